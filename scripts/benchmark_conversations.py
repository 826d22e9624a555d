"""Who speaks when in synthetic conversations of dev speakers: diarization error, speaker time, boundaries, speed.

Builds seeded conversations (:mod:`fewshot.eval.conversations`: 3 to 5
speakers, turns of 1 to 8 s, pauses of 0 to 1 s, about 2 minutes each) from
each speaker's held-out speech, enrolls every speaker from the first 15 s of
their speech, and runs each system over every conversation:

- ``turns``: ``fewshot identify --segments`` (Viterbi decoder);
- ``changepoint``: the change-point decoder;
- ``blocks``: ``fewshot identify --segments`` before turns (3 s pieces of speech, read as seconds of the file);
- ``demo``: the live demo's file mode (the turn decoder as a stream, ``fewshot/live/turns.py``).

Prints per system: diarization error rate (pyannote.metrics, collar 0.25 s
either side of a reference boundary), identification error rate (the same with
names as given), speaker-time accuracy, the median boundary error and the share
of changes of speaker found within 0.5 s (from the reference pause to the
nearest change of speaker in the answer: zero when they overlap), the median
edge error (the larger error of the two turns' end and start at a change), and
seconds per 10 minutes of recording (on the clock, and on the CPU); for the demo, how soon its provisional
label first names the speaker of a turn (median seconds after the turn's start, share within 1.5 s).

Example
-------
    python scripts/benchmark_conversations.py ../shared/data/dev --conversations 50
"""

from __future__ import annotations

import argparse

from fewshot.progress import add_progress_argument, loader_progress, progress_bar


def build_parser() -> argparse.ArgumentParser:
    from fewshot.eval.conversations import SYSTEMS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="speaker-per-folder dataset (for example ../shared/data/dev)")
    p.add_argument("--conversations", type=int, default=50, help="how many conversations (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the conversations (default: 0)")
    p.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), help="systems to run (default: all)")
    p.add_argument(
        "--outsider",
        action="store_true",
        help="leave each conversation's first speaker out of the group: their turns should be unknown",
    )
    p.add_argument("--model", help="extractor model directory (default: the model shipped with fewshot)")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    add_progress_argument(p)
    return p


def main(argv=None) -> int:
    from fewshot.eval.conversations import conversation_speakers, evaluate_conversations, make_conversations
    from fewshot.model.extractor import load_extractor

    args = build_parser().parse_args(argv)
    extractor = load_extractor(args.model)
    speakers = conversation_speakers(
        args.data, progress=loader_progress("Loading speakers", "speakers", always=args.progress)
    )
    conversations = make_conversations(speakers, n=args.conversations, seed=args.seed)
    minutes = sum(len(c.y) for c in conversations) / 16000 / 60
    print(
        f"{len(conversations)} conversations ({minutes:.1f} min) of {len(speakers)} speakers from {args.data}, "
        f"seed {args.seed}{', first speaker of each outside the group' if args.outsider else ''}; "
        f"extractor {extractor.model_id} ({extractor.backend.name})"
    )

    def bar(items, total, desc):
        return progress_bar(always=args.progress)(items, total=total, desc=desc, unit="conversations")

    figures = evaluate_conversations(
        extractor, speakers, conversations, systems=args.systems, outsider=args.outsider, progress=bar
    )
    print(
        "| system | DER | identification error | speaker time right | median boundary error | changes within "
        "0.5 s | median edge error | s per 10 min (CPU s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for system, f in figures.items():
        print(
            f"| {system} | {f['der']:.1%} | {f['identification_error']:.1%} | {f['speaker_time_accuracy']:.1%} | "
            f"{f['boundary_median_s']:.2f} s | {f['boundary_within_0_5s']:.1%} | {f['edge_median_s']:.2f} s | "
            f"{f['seconds_per_10_min']:.1f} ({f['cpu_seconds_per_10_min']:.1f}) |"
        )
    for system, f in figures.items():
        if "label_latency_median_s" in f:
            print(
                f"{system}: the provisional label names a turn's speaker a median {f['label_latency_median_s']:.2f} s "
                f"after the turn starts ({f['labelled_within_1_5s']:.1%} of turns within 1.5 s)"
            )
    if args.json:
        from fewshot.persistence import atomic_write_json

        atomic_write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
