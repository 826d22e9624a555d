"""Make a trained model directory the shipped default, with its unknown threshold set.

The threshold is the equal-error-rate point of verification on held-out speakers
(each speaker's 15 s enrollment centroid against every 5 s test piece, cosine
scores), written into the model's ``meta.json`` under ``classifier``.

Example
-------
    python scripts/release_model.py models/run1 --dev ../shared/data/dev
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="trained model directory (extractor.keras + meta.json)")
    p.add_argument("--dev", required=True, help="held-out speaker-per-folder tree for the threshold")
    p.add_argument("--to", help="destination (default: the package's models/default)")
    p.add_argument("--C", type=float, default=10.0, help="SVM C stored with the model")
    p.add_argument("--gamma", type=float, default=1.0, help="SVM gamma stored with the model")
    args = p.parse_args(argv)

    from fewshot.evaluation import compute_eer, embed_protocol, prepare_protocol, verification_scores
    from fewshot.extractor import Extractor, default_model_dir
    from fewshot.persistence import atomic_write_bytes

    ex = Extractor.load(args.model)
    speakers = prepare_protocol(args.dev, enroll_seconds=(15,))
    target, nontarget = verification_scores(embed_protocol(ex, speakers), T=15.0)
    eer, threshold = compute_eer(target, nontarget)
    dest = Path(args.to) if args.to else default_model_dir()
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(args.model) / "extractor.keras", dest / "extractor.keras")
    meta = json.loads((Path(args.model) / "meta.json").read_text())
    meta["classifier"] = {"C": args.C, "gamma": args.gamma, "unknown_threshold": round(threshold, 4),
                          "threshold_from": f"verification EER {eer:.4f} on {len(speakers)} speakers of "
                                            f"{Path(args.dev).name} (15 s enrollment, 5 s tests)"}
    atomic_write_bytes(dest / "meta.json", json.dumps(meta, indent=2, sort_keys=True).encode())
    Extractor.load(dest)
    print(f"released {ex.model_id} to {dest}: unknown threshold {threshold:.4f} (EER {100 * eer:.2f}% on "
          f"{len(speakers)} speakers, {len(target)} target and {len(nontarget)} non-target trials)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
