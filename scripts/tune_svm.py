"""Compare group-classifier settings on held-out speakers (the standard protocol, T = 15 s).

Rows: RBF SVM on L2-normalised embeddings for a grid of C and gamma, the same with a
per-group StandardScaler, and cosine-to-centroid scoring. Columns: mean accuracy over
random 3- and 10-speaker groups.

Example
-------
    python scripts/tune_svm.py ../shared/data/dev --draws 50
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fewshot.progress import add_progress_argument, loader_progress


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset", help="speaker-per-folder tree of held-out speakers")
    p.add_argument("--model", help="extractor model directory (default: the shipped model)")
    p.add_argument("--draws", type=int, default=50, help="groups drawn per size")
    p.add_argument("--seed", type=int, default=0)
    add_progress_argument(p)
    args = p.parse_args(argv)
    if not Path(args.dataset).is_dir():
        print(f"error: {args.dataset}: folder not found", file=sys.stderr)
        return 2

    import numpy as np
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from fewshot.config import ClassifierConfig
    from fewshot.eval.protocol import embed_protocol, group_draws, prepare_protocol
    from fewshot.groups.svc import GroupSVC
    from fewshot.model.extractor import load_extractor

    ex = load_extractor(args.model)
    speakers = prepare_protocol(
        args.dataset, enroll_seconds=(15,), progress=loader_progress("Loading", "speakers", always=args.progress)
    )
    emb = embed_protocol(ex, speakers)
    print(f"{len(speakers)} speakers of {args.dataset}, model {ex.model_id}, {args.draws} draws per size")

    def centroid_predict(X, y, Xt):
        clf = GroupSVC().fit(X, y)  # its unit-length centroids; the SVM is not used
        return clf.classes_[np.argmax(clf.cosine_scores(Xt), axis=1)]

    systems = {
        f"RBF SVM, L2, C={C:g}, gamma={g:g}": (lambda C=C, g=g: GroupSVC(C=C, gamma=g))
        for C in (1, 10, 100)
        for g in (0.25, 0.5, 1, 2, 4)
    }
    C0 = ClassifierConfig.C
    systems[f"RBF SVM, per-group StandardScaler, C={C0:g}, gamma=scale"] = lambda: make_pipeline(
        StandardScaler(), SVC(C=C0, gamma="scale", class_weight="balanced")
    )
    systems["cosine to centroid"] = None
    rng = np.random.default_rng(args.seed)
    groups = {K: group_draws(len(emb.names), K, draws=args.draws, rng=rng) for K in (3, 10)}
    print("| system | 3-way | 10-way |\n|---|---|---|")
    for name, make in systems.items():
        row = []
        for K, gs in groups.items():
            accs = []
            for g in gs:
                X = np.concatenate([emb.enroll[15.0][i] for i in g])
                y = np.concatenate([np.full(len(emb.enroll[15.0][i]), k) for k, i in enumerate(g)])
                Xt = np.concatenate([emb.tests[i] for i in g])
                yt = np.concatenate([np.full(len(emb.tests[i]), k) for k, i in enumerate(g)])
                pred = centroid_predict(X, y, Xt) if make is None else make().fit(X, y).predict(Xt)
                accs.append(np.mean(pred == yt))
            row.append(f"{100 * np.mean(accs):.1f}%")
        print(f"| {name} | {' | '.join(row)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
