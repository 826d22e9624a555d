"""The ``fewshot`` command: enroll, identify, verify, groups, spectrogram, evaluate, live, serve."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path


def _add_common(p):
    p.add_argument("--store", help="enrollment database (default: $FEWSHOT_HOME/enrollments.sqlite)")
    p.add_argument("--model", help="extractor model directory (default: the model shipped with fewshot)")


def build_parser() -> argparse.ArgumentParser:
    from .groups.openset import add_false_accept_arguments

    parser = argparse.ArgumentParser(
        prog="fewshot", description="Tell who is speaking after hearing each person for 15 to 35 seconds."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser = sub.add_parser

    def with_verbose(*args, **kwargs):  # -v works after the subcommand too
        p = add_parser(*args, **kwargs)
        if kwargs.get("add_help", True):
            p.add_argument(
                "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress to stderr"
            )
        return p

    sub.add_parser = with_verbose

    p = sub.add_parser("enroll", help="enroll a person into a group from recordings of their speech")
    _add_common(p)
    p.add_argument("--group", required=True, help="group name (created if new)")
    p.add_argument("--speaker", required=True, help="the person's name")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, flac, mp3, ogg, m4a, ...)")
    p.add_argument(
        "--keep-audio",
        action="store_true",
        help="also keep the enrollment speech, so a later extractor can re-embed it",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace the person's earlier enrollment (without it, the speech is added to it)",
    )
    p.add_argument("--force", action="store_true", help="enroll even a file with over 10%% of its samples clipped")
    p.add_argument(
        "--progress", action="store_true", help="show progress on standard error even when it is not a terminal"
    )

    p = sub.add_parser("identify", help="say who speaks in each file (or 'unknown')")
    _add_common(p)
    p.add_argument("--group", required=True, help="group to choose among")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per file on standard output (with its turns under --segments)",
    )
    p.add_argument(
        "--segments",
        action="store_true",
        help="also say who speaks when: turns (start and end in seconds of the file, speaker, score)",
    )
    p.add_argument(
        "--rttm",
        metavar="FILE",
        help="write the turns of every file to FILE in NIST RTTM format "
        "(file id: the file's name without its extension; its path as given where two files share "
        "a name)",
    )
    p.add_argument(
        "--progress",
        action="store_true",
        help="show the progress through files over a minute long on standard error even when it is not a terminal",
    )
    add_false_accept_arguments(p)

    p = sub.add_parser("groups", help="list groups; show, delete a group or remove a person")
    _add_common(p)
    p.add_argument(
        "action",
        nargs="?",
        choices=["list", "show", "delete", "remove", "upgrade"],
        default="list",
        help="list (default), show G, delete G, remove G NAME, upgrade [G] (re-embed kept audio with "
        "the extractor in use; every group enrolled with another one when G is not given)",
    )
    p.add_argument("group", nargs="?", help="group name")
    p.add_argument("name", nargs="?", help="person to remove")

    p = sub.add_parser("spectrogram", help="draw a file's log-mel spectrogram as a PNG")
    p.add_argument("file", metavar="FILE", help="audio file")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="PNG to write (.png is added when missing; in a folder, FILE's name with .png)",
    )
    p.add_argument("--raw", action="store_true", help="keep silences (default: cut as the extractor does)")

    from .eval.run import add_evaluate_parser
    from .groups.openset import add_false_accept_arguments
    from .train.export import add_export_parser

    p = sub.add_parser("verify", help="say whether each file is a given person's speech (accept or reject the claim)")
    _add_common(p)
    p.add_argument("--group", required=True, help="group the person is enrolled in")
    p.add_argument("--speaker", required=True, help="the person claimed")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    p.add_argument("--json", action="store_true", help="one JSON object per file on standard output")
    add_false_accept_arguments(p)
    p.set_defaults(handler=cmd_verify)
    add_evaluate_parser(sub)
    add_export_parser(sub)
    # listed for `fewshot --help` only: main() hands `fewshot live ...` to the demo's own parser
    sub.add_parser(
        "live",
        help="the live demo: enroll at the microphone, then name who speaks (options: fewshot live --help)",
        add_help=False,
    )
    from .live.web.server import add_serve_parser

    add_serve_parser(sub)
    return parser


def cmd_verify(args) -> int:
    """Accept or reject the claim for each file (exit status 0 either way; 2 when a file cannot be used)."""
    from .errors import AudioError
    from .names import shown

    sid, status = _identifier(args), 0
    for start in range(0, len(args.files), IDENTIFY_BATCH):
        files = args.files[start : start + IDENTIFY_BATCH]
        for f, v in zip(files, sid.verify_many(args.group, args.speaker, files)):
            if isinstance(v, AudioError):
                print(f"error: {shown(v)}", file=sys.stderr)
                status = 2
            elif args.json:
                print(
                    json.dumps(
                        {
                            "file": f,
                            "speaker": v.speaker,
                            "accepted": v.accepted,
                            "score": round(v.score, 4),
                            "threshold": None if v.threshold is None else round(v.threshold, 4),
                        }
                    ),
                    flush=True,
                )
            else:
                limit = "none" if v.threshold is None else f"{v.threshold:.3f}"
                print(
                    f"{shown(f)}: {'accepted' if v.accepted else 'rejected'} as {shown(v.speaker)} "
                    f"(score {v.score:.3f}, threshold {limit})"
                )
    return status


def _identifier(args):
    from .groups.openset import chosen_false_accept_rate
    from .identifier import SpeakerIdentifier
    from .model.extractor import load_extractor

    store = _store(args)  # a bad --store fails before the extractor loads
    return SpeakerIdentifier(load_extractor(args.model), store=store, false_accept_rate=chosen_false_accept_rate(args))


def _store(args):
    from .store.enrollments import EnrollmentStore

    return EnrollmentStore(args.store)


def _normalize_names(args) -> None:
    """Group and person names as the store keeps them (see :func:`fewshot.names.normalize_name`)."""
    from .names import normalize_name

    for attr, kind in (("group", "group"), ("speaker", "person"), ("name", "person")):
        if getattr(args, attr, None) is not None:
            setattr(args, attr, normalize_name(getattr(args, attr), kind=kind))


def _bars(args):
    """tqdm on standard error (on a terminal, or with ``--progress``), else ``None``, tqdm not imported then."""
    from .progress import progress_bar

    always = getattr(args, "progress", False)
    return progress_bar(always=always) if always or sys.stderr.isatty() else None


def _reading(args):
    """``progress`` for files over a minute (:func:`fewshot.model.streaming.embed_stream`): a bar of the seconds read."""
    bars, fmt = _bars(args), "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]"
    return bars and (
        lambda name, total_s: bars(total=total_s, desc=name, unit="s", bar_format=fmt if total_s else None)
    )


def cmd_enroll(args) -> int:
    import contextlib

    sid, bars = _identifier(args), _bars(args)
    files = (
        contextlib.nullcontext(args.files)
        if bars is None
        else bars(args.files, desc=f"Enrolling {args.speaker}", unit="file")
    )
    with files as files:
        res = sid.enroll(
            args.group, args.speaker, files, keep_audio=args.keep_audio, replace=args.replace, force=args.force
        )
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if res.added:
        print(
            f"added {res.seconds_used:.1f} s to {args.speaker!r} in group {args.group!r} "
            f"(now {res.total_seconds:.1f} s); use --replace to start over"
        )
        return 0
    extra = f" of {res.seconds_available:.1f} s" if res.seconds_available > res.seconds_used + 0.05 else ""
    print(
        f"enrolled {args.speaker!r} in group {args.group!r}: {res.seconds_used:.1f} s of speech used{extra}, "
        f"{res.n_segments} segments{' (audio kept)' if args.keep_audio else ''}"
    )
    return 0


#: Files decoded and embedded together by one step of ``fewshot identify``.
IDENTIFY_BATCH = 16


def cmd_identify(args) -> int:
    from .errors import AudioError
    from .names import shown
    from .turns.decoder import rttm_file_ids, rttm_lines, write_rttm

    sid = _identifier(args)
    status, rttm, named, file_ids = 0, [], 0, rttm_file_ids(args.files)
    for start in range(0, len(args.files), IDENTIFY_BATCH):
        files = args.files[start : start + IDENTIFY_BATCH]
        for k, (f, p) in enumerate(
            zip(
                files,
                sid.identify_many(
                    args.group, files, segments=args.segments or bool(args.rttm), progress=_reading(args)
                ),
            )
        ):
            if isinstance(p, AudioError):
                print(f"error: {shown(p)}", file=sys.stderr)
                status = 2
                continue
            named += 1
            if args.rttm:
                rttm += rttm_lines(p.segments, file_id=file_ids[start + k])
            if args.json:
                segs = [{"start": a, "end": b, "speaker": lab, "score": round(sc, 4)} for a, b, lab, sc in p.segments]
                print(
                    json.dumps(
                        {
                            "file": f,
                            "speaker": p.label,
                            "score": round(p.score, 4),
                            **({"nearest": p.nearest} if p.is_unknown else {}),
                            **({"segments": segs} if args.segments else {}),
                        }
                    ),
                    flush=True,
                )
                continue
            print(
                f"{shown(f)}: {shown(p.label)} (score {p.score:.3f}"
                f"{'' if not p.is_unknown else f', nearest {shown(p.nearest)}'})"
            )
            for a, b, lab, sc in p.segments if args.segments else []:
                print(f"  {a:7.2f} - {b:7.2f} s  {shown(lab)} ({sc:.3f})")
    if args.rttm and named:  # no file identified: no RTTM file, rather than an empty one
        write_rttm(args.rttm, rttm)
    return status


def cmd_groups(args) -> int:
    store = _store(args)
    if args.action == "list":
        groups = store.groups()
        if not groups:
            print("no groups yet; enroll someone with: fewshot enroll --group G --speaker NAME FILE...")
        for g in groups:
            n = len(g["speakers"])
            print(f"{g['name']}: {n} {'person' if n == 1 else 'people'} ({', '.join(g['speakers'])})")
        return 0
    if args.action == "upgrade":
        return _upgrade(args, store)
    if not args.group:
        raise ValueError(f"'fewshot groups {args.action}' needs a group name")
    if args.action == "show":
        from .store.upgrade import mapped_note

        members = store.speakers(args.group)
        print(f"group {args.group!r}: extractor {store.group_revision(args.group)[0]}")
        for s in members:
            print(
                f"  {s.name}: {s.seconds:.1f} s, {s.n_segments} segments, from {', '.join(s.sources)}"
                f"{' (audio kept)' if s.audio_kept else ''}"
                f"{f' (voiceprint mapped from extractor {s.mapped_from})' if s.mapped_from else ''}"
            )
        if note := mapped_note(args.group, members):
            print(f"note: {note}")
    elif args.action == "delete":
        store.delete_group(args.group)
        print(f"deleted group {args.group!r} and all its voiceprints")
    else:
        if not args.name:
            raise ValueError("'fewshot groups remove' needs a group and a person's name")
        store.remove_speaker(args.group, args.name)
        print(f"removed {args.name!r} and their voiceprints from group {args.group!r}")
    return 0


def _upgrade(args, store) -> int:
    from .identifier import SpeakerIdentifier
    from .model.extractor import load_extractor

    sid = SpeakerIdentifier(load_extractor(args.model), store=store)
    current = sid.extractor.model_id

    def stale(group: str) -> bool:
        """On another extractor, or on mapped voiceprints (without G: only those whose speech was kept)."""
        members = store.speakers(group)
        mapped = _mapped_with_audio(members) if not args.group else any(m.mapped_from for m in members)
        return store.group_revision(group)[0] != current or mapped

    todo = [g for g in ([args.group] if args.group else [g["name"] for g in store.groups()]) if stale(g)]
    if not todo:
        print(
            f"{f'group {args.group!r} already uses' if args.group else 'every group already uses'} "
            f"extractor {current}: nothing to upgrade"
        )
    bars = _bars(args)
    for group in todo:
        bar = bars and (lambda it, g=group: bars(it, desc=f"Re-embedding {g}", unit="people"))
        r = sid.upgrade(group, progress=bar)
        print(
            f"upgraded group {group!r} from extractor {r['from']} to {r['to']}: {len(r['speakers'])} "
            f"{'person' if len(r['speakers']) == 1 else 'people'}, {r['seconds']:.1f} s of kept speech re-embedded"
        )
    return 0


def _mapped_with_audio(members) -> bool:
    """Whether a group runs on mapped voiceprints whose speech is kept, so that upgrading it re-embeds them."""
    return any(m.mapped_from for m in members) and all(m.audio_kept for m in members)


def cmd_spectrogram(args) -> int:
    from .audio.decode import load
    from .audio.features import save_spectrogram_png
    from .audio.vad import check_audio, load_speech

    y = load(args.file) if args.raw else load_speech(args.file).samples
    check_audio(y, source=args.file)
    out = Path(args.output)
    if out.is_dir():
        out = out / (Path(args.file).stem + ".png")
    elif out.suffix.lower() != ".png":
        out = out.with_name(out.name + ".png")
    save_spectrogram_png(y, out, title=os.path.basename(args.file))
    print(f"wrote {out}")
    return 0


COMMANDS = {"enroll": cmd_enroll, "identify": cmd_identify, "groups": cmd_groups, "spectrogram": cmd_spectrogram}


def _live_argv(argv: list[str]) -> list[str] | None:
    """The demo's own options when ``argv`` runs ``fewshot live`` (``-v`` may come before it), else ``None``."""
    k = 1 if argv[:1] in (["-v"], ["--verbose"]) else 0
    if argv[k : k + 1] != ["live"]:
        return None
    rest = argv[k + 1 :]
    return rest[1:] if rest[:1] == ["--"] else rest


def main(argv=None) -> int:
    from .commands import exit_status

    argv = sys.argv[1:] if argv is None else list(argv)
    if (live_argv := _live_argv(argv)) is not None:  # the demo parses its options itself, --help included
        from .live.app import main as live_main

        return live_main(live_argv, prog="fewshot live")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)

    def run() -> int:
        if args.command in ("enroll", "identify", "verify", "groups"):
            _normalize_names(args)
        return handler(args)

    return exit_status(run, command=f"fewshot {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
