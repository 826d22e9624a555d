"""``fewshot evaluate``: the standard protocol on a dataset, with a report to look at.

Also the body of ``scripts/evaluate.py``. Progress bars (tqdm) live here, in
the front end; the library functions it calls only log.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger(__name__)

CURVE_SECONDS = (5, 10, 15, 20, 25, 30, 35)
VERIFICATION_SECONDS = 15.0


def _group_size(text):
    return (
        "all" if text == "all" else _checked(text, int, lambda k: k >= 2, "group size must be an integer >= 2 or 'all'")
    )


def _enroll_seconds(text):
    """Seconds of enrollment speech: more than 0, at most where the protocol's test pieces start."""
    from .protocol import TEST_OFFSET_S

    return _checked(
        text,
        float,
        lambda t: 0 < t <= TEST_OFFSET_S,
        f"seconds of enrollment speech must be more than 0 and at most {TEST_OFFSET_S:g} (where the test pieces start)",
    )


def _whole(low: int, high: int, what: str):
    """An argparse type: a whole number from ``low`` to ``high``."""
    return lambda text: _checked(
        text, int, lambda k: low <= k <= high, f"{what} must be a whole number from {low} to {high}"
    )


def _checked(text, kind, ok, rule: str):
    """``kind(text)`` when ``ok`` of it, else argparse's error: ``rule``, and what was given."""
    import argparse

    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"{rule}, given {text!r}")
    return value


def configure_parser(p):
    """Add the ``evaluate`` arguments to the parser ``p``."""
    from ..groups.openset import add_false_accept_arguments
    from ..progress import add_progress_argument

    p.add_argument("dataset", metavar="DATASET", help="speaker-per-folder tree (e.g. ../shared/data/dev)")
    p.add_argument("--out", required=True, help="folder for metrics.json, report.html, report.md and PNGs")
    p.add_argument("--model", help="extractor model directory (default: the model shipped with fewshot)")
    p.add_argument(
        "--group-sizes",
        nargs="+",
        type=_group_size,
        default=[3, 5, 10, 20, "all"],
        metavar="K",
        help="people per group: integers and/or 'all' (default: 3 5 10 20 all)",
    )
    p.add_argument(
        "--enroll-seconds",
        nargs="+",
        type=_enroll_seconds,
        default=[15.0, 35.0],
        metavar="T",
        help="enrollment speech per person, in seconds (default: 15 35)",
    )
    p.add_argument(
        "--curve-seconds",
        nargs="+",
        type=_enroll_seconds,
        default=list(CURVE_SECONDS),
        metavar="T",
        help="enrollment lengths of the accuracy-against-seconds curve (default: 5 10 ... 35)",
    )
    p.add_argument(
        "--draws", type=_whole(1, 100_000, "draws"), default=100, help="random groups per group size (default: 100)"
    )
    p.add_argument(
        "--seed", type=_whole(0, 2**32 - 1, "the seed"), default=0, help="seed of the group draws (default: 0)"
    )
    p.add_argument(
        "--baselines",
        action="store_true",
        help="also evaluate the MFCC-statistics baseline and the original project's CNN",
    )
    p.add_argument(
        "--conditions",
        metavar="LIST",
        help="also measure the default system with its test pieces degraded: 'default', 'all' or "
        "names from clean, room0.3, room0.6, ssn20, ssn10, ssn5, babble20, babble10, babble5, "
        "room0.3+ssn20, room0.6+ssn10, phone, cheapmic, and with recorded noise rec20, rec10, "
        "rec5, room0.3+rec20, room0.6+rec10 (see fewshot.eval.conditions)",
    )
    p.add_argument(
        "--noise",
        metavar="DIR",
        help="recorded background noises for the rec* conditions (default: the 'noise' folder beside "
        "DATASET, e.g. ../shared/data/noise)",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="embed the speech on Ray: 'local' (a private runtime on this machine's CPUs), 'auto' (the "
        "cluster this machine is part of) or a head node's HOST:PORT; every node needs the model "
        "directory at the same path (needs the 'data' extra; default: in this process)",
    )
    add_false_accept_arguments(p)
    add_progress_argument(p)
    p.add_argument(
        "--original-model",
        help="the original approach's model directory "
        "(default: models/original if it exists; skipped, and said so, otherwise)",
    )
    return p


def add_evaluate_parser(sub):
    """Register ``evaluate`` on the ``fewshot`` command's subparsers."""
    p = sub.add_parser("evaluate", help="benchmark a model on a speaker-per-folder dataset; write a report")
    configure_parser(p)
    p.set_defaults(handler=cmd_evaluate)
    return p


def _bar(args, desc, unit):
    from ..progress import loader_progress

    return loader_progress(desc, unit, always=getattr(args, "progress", False)) or (lambda it, total: it)


def _describe_default(ex, path, cc):
    if cc.false_accept_rate is not None and "open_set" in ex.meta:
        rule = (
            f"unknown when the AS-normalised score is below the threshold for the group's size at a target "
            f"false-accept rate of {cc.false_accept_rate:g}"
        )
    else:
        rule = f"unknown below cosine {cc.unknown_threshold:.4f}"
    tr = ex.meta.get("training", {})
    text = f"the fewshot extractor ({ex.extractor_config.arch}, {ex.dim}-d embeddings) from {path}"
    if tr:
        text += (
            f", trained on {tr.get('speakers', '?')} speakers ({tr.get('hours_of_speech', '?')} h of "
            f"speech) for {tr.get('epochs', '?')} epochs"
        )
    return (
        text + f"; per-group RBF SVM (C={cc.C:g}, gamma={cc.gamma:g}) on L2-normalised segment embeddings, "
        f"{rule}: the operating point stored with the model, "
        "which `fewshot identify` runs."
    )


def systems_to_run(args, speakers, enroll_T):
    """``{key: (label, extractor or None, classifier config or None, description)}`` in report order.

    The default system runs the classifier settings and threshold stored with
    its model (:meth:`ClassifierConfig.of_model`, as ``fewshot identify`` does);
    baselines get the default SVM settings and no threshold of their own.
    """
    from ..config import ClassifierConfig
    from ..groups.openset import chosen_false_accept_rate
    from ..model.extractor import default_model_dir, load_extractor
    from .baselines import MFCCStats, load_original

    main = load_extractor(args.model)
    cc = ClassifierConfig.of_model(main)
    rate = chosen_false_accept_rate(args)
    if rate is not None:
        cc = dataclasses.replace(cc, false_accept_rate=rate)
    out = {"default": ("fewshot CNN", main, cc, _describe_default(main, args.model or default_model_dir(), cc))}
    if not args.baselines:
        return out
    T = enroll_T if enroll_T in speakers[0].enroll else min(speakers[0].enroll)
    mfcc = MFCCStats().fit(
        [s.enroll[T] for s in speakers], description=f"each evaluated speaker's first {T:g} s of enrollment speech"
    )
    out["mfcc"] = (
        "MFCC statistics",
        mfcc,
        None,
        "mean and standard deviation of 20 MFCCs and their deltas (80 numbers) per 3 s segment or "
        f"5 s piece, globally standardised (mean and scale fitted, without labels, on "
        f"{mfcc.fit_description_}; no test audio), then the same SVM.",
    )
    orig, note = load_original(args.original_model)
    desc = (
        "the original project's Cifar-10-style CNN: two blocks of two 3x3 convolutions (8, 16 filters) "
        "with 2x2 pooling, flattened straight into the same SVM"
    )
    if orig is not None:
        tr = orig.meta.get("training", {})
        desc += (
            f" ({orig.dim}-d); trained by scripts/train_extractor.py --arch original on "
            f"{tr.get('speakers', '?')} speakers for {tr.get('epochs', '?')} epochs; {note}."
        )
    else:
        desc += f". **Not evaluated**: {note}"
    out["original"] = ("original CNN", orig, None, desc)
    return out


def command_line(args) -> str:
    """The ``fewshot evaluate`` command that reproduces this run."""
    argv = [str(args.dataset), "--out", str(args.out)]
    if args.model:
        argv += ["--model", str(args.model)]
    for flag, value, default in (
        ("--group-sizes", args.group_sizes, [3, 5, 10, 20, "all"]),
        ("--enroll-seconds", args.enroll_seconds, [15.0, 35.0]),
        ("--curve-seconds", args.curve_seconds, list(CURVE_SECONDS)),
    ):
        if [str(v) for v in value] != [str(v) for v in default] and list(value) != list(default):
            argv += [flag, *[f"{v:g}" if isinstance(v, float) else str(v) for v in value]]
    argv += ["--draws", str(args.draws)] if args.draws != 100 else []
    argv += ["--seed", str(args.seed)] if args.seed != 0 else []
    argv += ["--baselines"] if args.baselines else []
    argv += ["--original-model", str(args.original_model)] if args.original_model else []
    argv += ["--conditions", args.conditions] if args.conditions else []
    argv += ["--noise", str(args.noise)] if getattr(args, "noise", None) else []
    argv += ["--strict"] if getattr(args, "strict", False) else []
    argv += ["--cluster", args.cluster] if getattr(args, "cluster", None) else []
    rate = getattr(args, "false_accept_rate", None)
    argv += ["--false-accept-rate", f"{rate:g}"] if rate is not None else []
    return "fewshot evaluate " + shlex.join(argv)


def engine(args):
    """``(context, embed)``: where the speech is embedded. In this process
    (:func:`~fewshot.eval.benchmark.embed_protocol_chunked`, as ``fewshot identify`` embeds) or, with
    ``--cluster``, on Ray (:func:`~fewshot.eval.embed_pool.embed_protocol_on_ray`), whose runtime lasts
    as long as ``context``. A private runtime gets every CPU of this machine: the driver waits while it embeds."""
    import contextlib
    import functools

    from .benchmark import embed_protocol_chunked

    if not getattr(args, "cluster", None):
        return contextlib.nullcontext(), embed_protocol_chunked
    from ..cluster import runtime
    from ..model.backend import cpu_threads
    from .embed_pool import embed_protocol_on_ray

    place = {"address": None if args.cluster == "local" else args.cluster, "cpus": cpu_threads()}
    return runtime(**place), functools.partial(embed_protocol_on_ray, **place)


def run_evaluation(args) -> dict:
    """Prepare the protocol, embed and score every system, write the report; returns the metrics."""
    from .. import __version__
    from ..audio.decode import SAMPLE_RATE
    from ..datasets import speaker_folders
    from ..groups.openset import load_calibration
    from .benchmark import embed_as_enrolled, evaluate_embeddings
    from .decisions import worst_cell
    from .protocol import PROTOCOL_TOP_DB, prepare_protocol
    from .report import write_report

    recordings = []
    if args.conditions:
        from .conditions import load_recordings, needs_recordings, parse_conditions

        names = parse_conditions(args.conditions)  # an unknown name fails before any work
        if needs_recordings(names):
            recordings = load_recordings(noise_folder(args))
    t0 = time.time()
    folders = speaker_folders(args.dataset)
    Ts = sorted({float(t) for t in [*args.enroll_seconds, *args.curve_seconds, VERIFICATION_SECONDS]})
    speakers = prepare_protocol(args.dataset, enroll_seconds=Ts, progress=_bar(args, "Loading speech", "speakers"))
    if len(speakers) < 2:
        raise ValueError(
            f"{args.dataset}: {len(speakers)} speakers have enough speech for the protocol "
            f"(35 s of enrollment plus 2 test pieces of 5 s); at least 2 are needed"
        )
    timing = {"load": round(time.time() - t0, 1)}
    systems = {}
    session, embed = engine(args)
    with session:
        for key, (label, ex, cc, desc) in systems_to_run(args, speakers, VERIFICATION_SECONDS).items():
            systems[key] = {"label": label, "description": desc}
            if ex is None:
                systems[key]["skipped"] = desc
                continue
            t1 = time.time()
            emb = embed_as_enrolled(
                ex, speakers, cc, progress=_bar(args, f"Embedding ({label})", "chunks"), embed=embed
            )
            t2 = time.time()
            res = evaluate_embeddings(
                emb,
                classifier=cc,
                group_sizes=args.group_sizes,
                enroll_seconds=args.enroll_seconds,
                curve_seconds=args.curve_seconds,
                draws=args.draws,
                seed=args.seed,
                verification_seconds=VERIFICATION_SECONDS,
                calibration=load_calibration(ex) if key == "default" else None,
                progress=_bar(args, f"Groups ({label})", "sizes"),
            )
            if key == "default":
                main_extractor, main_classifier = ex, cc
            systems[key].update(
                model_id=ex.model_id,
                embedding_dim=int(getattr(ex, "dim", 0)),
                **res,
                timing_s={"embed": round(t2 - t1, 1), "groups": round(time.time() - t2, 1)},
            )
        main = systems["default"]
        if args.conditions:
            t1 = time.time()
            main["conditions"] = run_conditions(
                args, speakers, main_extractor, main_classifier, recordings=recordings, embed=embed
            )
            main["open_set_worst"] = worst_cell(main["conditions"])
            main["timing_s"]["conditions"] = round(time.time() - t1, 1)
    genders = {}
    for s in speakers:
        if s.gender:
            genders[s.gender] = genders.get(s.gender, 0) + 1
    timing["total"] = round(time.time() - t0, 1)
    metrics = {
        "format_version": 1,
        "fewshot_version": __version__,
        "title": f"fewshot evaluation: {args.dataset}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(args),
        "model_id": main["model_id"],
        "dataset": {
            "path": str(args.dataset),
            "speakers_found": len(folders),
            "speakers_evaluated": len(speakers),
            "left_out": sorted(set(folders) - {s.name for s in speakers}),
            "test_pieces": sum(len(s.tests) for s in speakers),
            "genders": genders,
        },
        "protocol": {
            "sr": SAMPLE_RATE,
            "vad": f"fewshot.audio.vad.speech_intervals, top_db={PROTOCOL_TOP_DB:g}, "
            "25 ms frames, 10 ms hop, no absolute floor",
            "enroll_seconds": [float(t) for t in args.enroll_seconds],
            "piece_s": 5.0,
            "max_pieces": 12,
            "test_offset_s": 35.0,
            "min_test_pieces": 2,
            "group_sizes": [str(k) for k in args.group_sizes],
            "same_gender_group_size": 5,
            "draws": args.draws,
            "seed": args.seed,
            "curve_seconds": [float(t) for t in args.curve_seconds],
            "verification_seconds": VERIFICATION_SECONDS,
        },
        "operating_point": {
            **main["classifier"],
            "eer_here": main["verification"]["eer"],
            "eer_threshold_here": main["verification"]["eer_threshold"],
        },
        "skipped_groups": main["skipped_groups"],
        "systems": systems,
        "timing_s": timing,
    }
    write_report(metrics, args.out)
    return metrics


def noise_folder(args) -> Path:
    """``--noise``, or the ``noise`` folder beside the dataset."""
    return Path(args.noise) if getattr(args, "noise", None) else Path(args.dataset).resolve().parent / "noise"


def run_conditions(args, speakers, extractor, classifier, *, recordings=(), embed=None) -> dict:
    """Figures of the default system per test condition (enrollment stays clean), embedded by ``embed``
    (default :func:`~fewshot.eval.benchmark.embed_protocol_chunked`; see :func:`engine`).

    Each condition is measured with the shipped classifier settings and, under
    ``"other_enrollment"``, with multi-condition enrollment switched the other
    way, so its gain is measured on its own; ``"open_set"`` and ``"verify"``
    hold the shipped decisions' rates per corpus (:mod:`fewshot.eval.decisions`).
    """
    import dataclasses

    from ..groups.openset import load_calibration
    from .benchmark import condition_figures, embed_protocol_chunked
    from .conditions import CONDITIONS, Degrader, parse_conditions
    from .decisions import measure_decisions

    names = parse_conditions(args.conditions)
    T = VERIFICATION_SECONDS
    degrader = Degrader(
        [s.enroll[T] for s in speakers], [s.name for s in speakers], seed=args.seed, recordings=recordings
    )
    sizes = [K for K in args.group_sizes if K in (3, 10, "all")] or args.group_sizes
    other = dataclasses.replace(classifier, multi_condition=not classifier.multi_condition)
    out, tests = {}, {}
    copies = None
    bar = _bar(args, "Conditions", "conditions")
    for name in bar(names, len(names)):
        view = [
            dataclasses.replace(
                s,
                enroll={T: s.enroll[T]},
                tests=[
                    degrader.apply(name, t, speaker=s.name, index=i) if name != "clean" else t
                    for i, t in enumerate(s.tests)
                ],
            )
            for s in speakers
        ]
        emb = (embed or embed_protocol_chunked)(extractor, view, copies=copies is None)
        copies = emb.enroll_copies if copies is None else copies  # the enrollment is the same for every condition
        emb = dataclasses.replace(emb, enroll_copies=copies)
        tests[name] = emb.tests
        c = CONDITIONS[name]
        figures = {
            k: condition_figures(emb, classifier=cc, group_sizes=sizes, T=T, draws=args.draws, seed=args.seed)
            for k, cc in (("shipped", classifier), ("other", other))
        }
        out[name] = {
            "rt60_s": c.rt60_s,
            "noise": c.noise,
            "snr_db": c.snr_db,
            "channel": c.channel,
            **figures["shipped"],
            "other_enrollment": {"multi_condition": other.multi_condition, **figures["other"]},
        }
    decisions = measure_decisions(
        emb,
        tests,
        classifier=classifier,
        calibration=load_calibration(extractor),
        T=T,
        draws=args.draws,
        seed=args.seed,
    )
    return {name: {**figures, **decisions[name]} for name, figures in out.items()}


def cmd_evaluate(args) -> int:
    """Run the evaluation and print the headline table."""
    from ..cluster import ClusterError
    from ..commands import require
    from .report import condition_lines, decision_lines, headline, open_set_lines, open_set_size_lines

    require(
        "matplotlib",
        *(["librosa"] if args.baselines else []),
        *(["pyroomacoustics"] if args.conditions else []),
        *(["ray"] if args.cluster else []),
    )
    try:
        metrics = run_evaluation(args)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    head, rows = headline(metrics)
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(r))
    for s in metrics["systems"].values():
        if "skipped" in s:
            print(f"{s['label']}: {s['skipped']}")
    op = metrics["operating_point"]
    print(
        f"shipped operating point: unknown {metrics['systems']['default']['unknown_rule']} "
        f"(best case on this data: the cosine EER threshold {op['eer_threshold_here']:.3f}, "
        f"EER {100 * op['eer_here']:.2f} %)"
    )
    for line in (
        open_set_size_lines(metrics) + open_set_lines(metrics) + condition_lines(metrics) + decision_lines(metrics)
    ):
        print(line)
    print(f"report: {Path(args.out) / 'report.html'} ({metrics['timing_s']['total']:.0f} s)")
    return 0
