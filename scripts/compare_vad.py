"""Compare voice-activity detectors under noise: the energy VAD, webrtcvad and silero-vad.

On real speech (a dev set: one folder of audio per speaker), each utterance is
padded with 1 s of digital silence before and after, then degraded (clean;
speech-shaped noise at 20, 10, 5 dB; babble of other dev speakers at 10 dB;
a room of RT60 0.6 s plus speech-shaped noise at 10 dB; all from
:mod:`fewshot.audio.degrade`, seeded). Every detector labels each 10 ms frame, and
is scored against reference labels from the CLEAN padded utterance:

- reference ``energy35``: the energy VAD (top_db 35) on clean audio, the main one;
- reference ``webrtc3``: webrtcvad at aggressiveness 3 on clean audio, a second
  one, so that the reference's choice can be seen not to decide the ranking
  (each reference favours its own detector on clean audio);
- and, free of any reference, the false-alarm rate on the padding frames,
  which are noise-only by construction.

Rates are pooled over all frames: false alarm (reference non-speech frames
called speech), miss (reference speech frames called non-speech), and the
share of the detector's kept frames that are reference non-speech. Speed is
seconds of audio per second on one thread (x real time), the median of
``--repeats`` runs on ``--speed-seconds`` of noisy audio. Run it with
``OMP_NUM_THREADS=1``.

Needs ``pip install webrtcvad-wheels onnxruntime`` and ``pip install --no-deps
silero-vad`` (silero-vad's wheel carries the ONNX models; its own dependency on
torch is not needed here).

Example
-------
    OMP_NUM_THREADS=1 python scripts/compare_vad.py ../shared/data/dev --speakers 20 --out report-vad
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from fewshot.audio.decode import load
from fewshot.eval import vad_compare as vc
from fewshot.progress import add_progress_argument, progress_bar

AUDIO_EXT = {".mp3", ".wav", ".flac", ".ogg", ".m4a"}
METRICS = ("false_alarm", "miss", "noise_share_of_kept")


def files_of(folder: Path, n: int) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXT)[:n]


def pick(dataset: Path, n_speakers: int, n_babble: int):
    """Every k-th speaker folder (sorted) for the test, and ``n_babble`` folders between them for babble."""
    names = sorted(p.name for p in dataset.iterdir() if p.is_dir())
    step = max(1, len(names) // max(n_speakers, 1))
    chosen = names[::step][:n_speakers]
    rest = [n for n in names if n not in chosen]
    talkers = rest[:: max(1, len(rest) // max(n_babble, 1))][:n_babble]
    return chosen, talkers


def versions() -> dict:
    out = {}
    for pkg in ("numpy", "webrtcvad-wheels", "onnxruntime", "silero-vad"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def fmt(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}"


def markdown(result: dict) -> str:
    d = result["data"]
    lines = [
        f"Data: {d['utterances']} utterances of {len(d['speakers'])} speakers ({', '.join(d['speakers'])}), "
        f"{d['speech_audio_s']:.0f} s of speech audio, {d['padded_audio_s']:.0f} s per condition with 1 s of "
        f"padding each side; babble talkers {', '.join(d['babble_talkers'])}. Rates in % of 10 ms frames, "
        "pooled. Reference A: energy VAD (top_db 35) on the clean audio; reference B: webrtcvad mode 3 on "
        "the clean audio; pad FA: false alarms on the padding frames (noise-only whatever the reference).",
        "",
        "| condition | VAD | FA (A) | miss (A) | noise in kept (A) | FA (B) | miss (B) | noise in kept (B) | pad FA |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cond, by_vad in result["conditions"].items():
        for name, r in by_vad.items():
            a, b = r["ref_energy35"], r["ref_webrtc3"]
            lines.append(
                f"| {cond} | {name} | "
                + " | ".join(fmt(a[m]) for m in METRICS)
                + " | "
                + " | ".join(fmt(b[m]) for m in METRICS)
                + f" | {fmt(a['padding_false_alarm'])} |"
            )
    lines += ["", "Ranking by FA + miss (best first), reference A vs B:", ""]
    for cond, r in result["ranking"].items():
        lines.append(
            f"- {cond}: A {' > '.join(r['ref_energy35'])}; B {' > '.join(r['ref_webrtc3'])}"
            + (
                ""
                if r["same"]
                else "  (differs"
                + ("; the same without energy35 and webrtc3)" if r["same_without_reference_detectors"] else ")")
            )
        )
    lines += [
        "",
        f"Speed, one thread, median of {result['speed']['repeats']} runs on "
        f"{result['speed']['audio_s']:.0f} s of {result['speed']['audio']}:",
        "",
        "| VAD | x real time | ms per minute of audio |",
        "|---|---|---|",
    ]
    for name, s in result["speed"]["by_vad"].items():
        lines.append(f"| {name} | {s['x_real_time']:.0f} | {1000 * s['seconds'] * 60 / s['audio_s']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", type=Path, help="folder of speaker folders (e.g. ../shared/data/dev)")
    ap.add_argument("--speakers", type=int, default=20, help="speakers to test, every k-th folder (default 20)")
    ap.add_argument("--files", type=int, default=8, help="files per speaker (default 8)")
    ap.add_argument("--babble-talkers", type=int, default=4, help="other speakers summed for babble (default 4)")
    ap.add_argument("--webrtc-frame-ms", type=int, default=30, choices=(10, 20, 30))
    ap.add_argument("--speed-seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("report-vad"), help="folder for vad_comparison.json")
    add_progress_argument(ap)
    args = ap.parse_args(argv)
    if not args.dataset.is_dir():
        print(
            f"error: dataset folder {args.dataset} does not exist (expected one folder of audio per speaker)",
            file=sys.stderr,
        )
        return 2

    speakers, talkers = pick(args.dataset, args.speakers, args.babble_talkers)
    utts = [(s, f, load(f, sr=vc.SR)) for s in speakers for f in files_of(args.dataset / s, args.files)]
    others = [np.concatenate([load(f, sr=vc.SR) for f in files_of(args.dataset / t, 3)]) for t in talkers]
    silero = vc.SileroSequence()
    dets = vc.detectors(silero=silero, webrtc_frame_ms=args.webrtc_frame_ms)
    refs = {"ref_energy35": dets["energy35"], "ref_webrtc3": dets["webrtc3"]}
    clean = [vc.pad(y) for _, _, y in utts]
    ref_masks = [{k: fn(c) for k, fn in refs.items()} for c in clean]
    pads = [vc.padding_mask(len(y)) for _, _, y in utts]

    counts = {c.name: {d: {r: vc.Counts() for r in refs} for d in dets} for c in vc.CONDITIONS}
    noisy_for_speed = []
    with progress_bar(always=args.progress)(
        total=len(vc.CONDITIONS) * len(utts), desc="VAD x condition", unit="utt"
    ) as bar:
        for cond in vc.CONDITIONS:
            for i, (_, _, y) in enumerate(utts):
                x = vc.degraded(y, cond, index=i, seed=args.seed, others=others)
                if cond.name == "ssn10":
                    noisy_for_speed.append(x)
                for d, fn in dets.items():
                    mask = fn(x)
                    for r in refs:
                        counts[cond.name][d][r].add(mask, ref_masks[i][r], pads[i])
                bar.update()

    conditions = {
        c: {d: {r: cnt.rates() for r, cnt in by_ref.items()} for d, by_ref in by_vad.items()}
        for c, by_vad in counts.items()
    }
    ranking = {}
    for c, by_vad in conditions.items():
        ranks = {r: sorted(by_vad, key=lambda d: by_vad[d][r]["false_alarm"] + by_vad[d][r]["miss"]) for r in refs}
        mine = [[d for d in ranks[r] if d not in ("energy35", "webrtc3")] for r in refs]
        # each reference puts its own detector first on clean audio; the other detectors' order is the test
        ranking[c] = {
            **ranks,
            "same": ranks["ref_energy35"] == ranks["ref_webrtc3"],
            "same_without_reference_detectors": mine[0] == mine[1],
        }
    agree = np.concatenate([m["ref_energy35"] == m["ref_webrtc3"] for m in ref_masks])

    y_speed = np.concatenate(noisy_for_speed)
    y_speed = np.tile(y_speed, -(-int(args.speed_seconds * vc.SR) // len(y_speed)))[: int(args.speed_seconds * vc.SR)]
    speed_fns = {**dets, "silero-stream (1 ONNX call per 32 ms)": vc.SileroOnnx().mask}
    speed = {
        "audio": "the ssn10 utterances (padded)",
        "audio_s": len(y_speed) / vc.SR,
        "repeats": args.repeats,
        "by_vad": {d: vc.speed(fn, y_speed, repeats=args.repeats) for d, fn in speed_fns.items()},
    }
    speed["by_vad"]["silero0.5"]["note"] = "sequence ONNX export, probabilities identical to the streaming model"

    result = {
        "protocol": {
            "pad_s": vc.PAD_S,
            "frame_hop_ms": 10,
            "webrtc_frame_ms": args.webrtc_frame_ms,
            "silero": "silero_vad_16k_sequence.onnx, threshold 0.5 per 32 ms chunk, no smoothing",
            "snr": "relative to the unpadded utterance's power",
            "seed": args.seed,
            "references": {
                "ref_energy35": "energy VAD top_db 35 on the clean padded audio",
                "ref_webrtc3": "webrtcvad mode 3 on the clean padded audio",
            },
            "conditions": [c.__dict__ for c in vc.CONDITIONS],
        },
        "data": {
            "dataset": str(args.dataset),
            "speakers": speakers,
            "babble_talkers": talkers,
            "files": [str(f) for _, f, _ in utts],
            "utterances": len(utts),
            "speech_audio_s": sum(len(y) for _, _, y in utts) / vc.SR,
            "padded_audio_s": sum(len(c) for c in clean) / vc.SR,
        },
        "reference_agreement": {
            "frames": int(agree.size),
            "agree": float(agree.mean()),
            "speech_share_energy35": float(np.mean(np.concatenate([m["ref_energy35"] for m in ref_masks]))),
            "speech_share_webrtc3": float(np.mean(np.concatenate([m["ref_webrtc3"] for m in ref_masks]))),
        },
        "conditions": conditions,
        "ranking": ranking,
        "speed": speed,
        "versions": versions(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vad_comparison.json").write_text(json.dumps(result, indent=1))
    print(markdown(result))
    ra = result["reference_agreement"]
    print(
        f"\nReferences A and B agree on {100 * ra['agree']:.1f}% of {ra['frames']} clean frames "
        f"(speech share A {100 * ra['speech_share_energy35']:.1f}%, B {100 * ra['speech_share_webrtc3']:.1f}%)."
    )
    print(f"Wrote {args.out / 'vad_comparison.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
