"""The live demo: enroll people from the microphone, then name who is speaking.

Run as ``python demo/live.py`` or ``fewshot live`` (the same options)::

    python demo/live.py [--group G] [--device D] [--seconds 15..35] [--model PATH] [--store PATH]
    python demo/live.py --list-devices
    python demo/live.py --group G --enroll ann=ann.wav --enroll bob=bob.wav --input talk.wav [--json]

Built on :class:`fewshot.identifier.SpeakerIdentifier`: enrollments go into the
same store as ``fewshot enroll`` (``$FEWSHOT_HOME/enrollments.sqlite``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys

from .mic import Microphone, NoMicrophone, list_devices
from .session import LiveSession, members
from .turns import stream_turns, warm_up
from .ui import SessionLog, Terminal

DEFAULT_GROUP = "live"


def _seconds(text: str) -> float:
    value = float(text)
    if not 15 <= value <= 35:
        raise argparse.ArgumentTypeError(f"must be between 15 and 35 seconds, given {text}")
    return value


#: The longest countdown before a recording, in seconds.
MAX_COUNTDOWN_S = 30


def _countdown(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_COUNTDOWN_S:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of seconds from 0 to {MAX_COUNTDOWN_S}, given {text!r}"
        )
    return value


def _name_file(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, given {text!r}")
    return name.strip(), path


def build_parser(prog: str = "python demo/live.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Enroll people from the microphone (15-35 s of speech each), then name who is speaking. "
        "Without a microphone, --enroll and --input do the same from files.",
    )
    p.add_argument(
        "--group",
        default=DEFAULT_GROUP,
        help=f"group of people to enroll and recognise (default: {DEFAULT_GROUP!r}; created if new)",
    )
    p.add_argument("--device", help="input device: its number or part of its name (default: the system's)")
    p.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    p.add_argument(
        "--seconds",
        type=_seconds,
        default=20.0,
        metavar="S",
        help="seconds of speech to record per person, 15 to 35 (default: 20)",
    )
    p.add_argument("--model", help="extractor model directory (default: the model shipped with fewshot)")
    p.add_argument("--store", help="enrollment database (default: $FEWSHOT_HOME/enrollments.sqlite)")
    p.add_argument(
        "--log",
        metavar="FILE",
        help="session log to write (default: a new file under "
        "sessions/ next to the store; file mode writes one only when asked)",
    )
    p.add_argument(
        "--countdown",
        type=_countdown,
        default=3,
        metavar="N",
        help=f"seconds of countdown before each recording, 0 to {MAX_COUNTDOWN_S} (default: 3)",
    )
    files = p.add_argument_group("file mode (no microphone)")
    files.add_argument(
        "--enroll",
        action="append",
        type=_name_file,
        metavar="NAME=FILE",
        help="enroll NAME from FILE, replacing an earlier enrollment (repeatable; repeat a NAME to use several files)",
    )
    files.add_argument(
        "--input", metavar="FILE", help="say who speaks when in FILE, turn by turn, as the microphone would hear it"
    )
    files.add_argument(
        "--json",
        action="store_true",
        help="with --input: one JSON object per turn on standard output (start, end, speaker, score)",
    )
    return p


def this_command() -> str:
    """How the user started the demo, as a command that works when typed again from the same folder."""
    import shutil

    python = _path_as_typed(sys.executable)
    if os.path.basename(sys.argv[0]) == "fewshot":  # the console script: `fewshot live`
        on_path = shutil.which("fewshot")
        same = on_path is not None and os.path.realpath(on_path) == os.path.realpath(sys.argv[0])
        return f"{'fewshot' if same else shlex.quote(_path_as_typed(sys.argv[0]))} live"
    script = _path_as_typed(sys.argv[0]) if sys.argv and sys.argv[0].endswith(".py") else "demo/live.py"
    return f"{shlex.quote(python)} {shlex.quote(script)}"


def _path_as_typed(path: str) -> str:
    """``path`` relative to the current folder when it lies below it, else absolute."""
    rel = os.path.relpath(path)
    return os.path.abspath(path) if rel.startswith("..") else rel


#: Where the no-microphone advice writes the example recordings (relative to the current folder).
EXAMPLES_FOLDER = "voices"


def file_mode_advice(args) -> list[str]:
    """Commands that run as printed, without a microphone: make example recordings, then file mode on them
    (with the group, model and store the demo was given)."""
    given = [
        ("--group", args.group if args.group != DEFAULT_GROUP else None),
        ("--model", args.model),
        ("--store", args.store),
    ]
    options = "".join(f" {flag} {shlex.quote(value)}" for flag, value in given if value is not None)
    d = EXAMPLES_FOLDER
    return [
        f"{shlex.quote(_path_as_typed(sys.executable))} -m fewshot.live.examples --out {d}",
        f"{this_command()}{options} --enroll ann={d}/ann1.wav --enroll bob={d}/bob.mp3 --input {d}/meeting.flac",
    ]


def load_identifier(args):
    """The pipeline with the chosen model and store, warmed up so the first label comes fast."""
    from ..errors import IncompatibleModelError
    from ..identifier import SpeakerIdentifier
    from ..model.extractor import default_model_dir, load_extractor

    if args.model is None and not (default_model_dir() / "meta.json").is_file():
        raise IncompatibleModelError(
            f"the default model is not installed ({default_model_dir()} has no "
            "meta.json); pass --model DIR, a trained model directory"
        )
    extractor = load_extractor(args.model)
    sid = SpeakerIdentifier(extractor, store=args.store)
    warm_up(extractor)
    return sid


# ---------------------------------------------------------------------------- file mode
def run_files(args) -> int:
    from ..audio.decode import load
    from ..audio.vad import speech
    from ..errors import AudioError

    out = sys.stderr if args.json else sys.stdout
    people: dict[str, list[str]] = {}
    for name, path in args.enroll or []:
        people.setdefault(name, []).append(path)
    # every file is decoded and checked, as enrollment checks it, before anything is stored or written
    log_path = check_log_path(args.log) if args.log else None
    sid = load_identifier(args)
    y = None
    if args.input:  # decoded once, at the model's rate; silence or too little speech is an error, as in identify
        y = load(args.input, sr=sid.extractor.feature_config.sr)
        speech(y, config=sid.extractor.feature_config, source=args.input)
    for files in people.values():
        sid.check_sources(files)
    if args.input and not people:
        sid.classifier(args.group)  # an empty or unknown group fails here, before any work
    log = SessionLog(log_path, group=args.group, model=sid.extractor.model_id) if log_path else None
    done = []
    for name, files in people.items():
        try:
            res = sid.enroll(args.group, name, files, replace=True)
        except KeyboardInterrupt:
            kept = f"kept: {', '.join(map(repr, done))}" if done else "nothing else was enrolled"
            print(f"\ninterrupted: the enrollment of {name!r} is dropped; {kept}", file=sys.stderr)
            return 130
        done.append(name)
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(
            f"enrolled {name!r} in group {args.group!r} from {', '.join(os.path.basename(f) for f in files)}: "
            f"{res.seconds_used:.1f} s of speech, {res.n_segments} segments",
            file=out,
            flush=True,
        )
        if log:
            log.event("enrolled", name, f"{res.seconds_used:.1f} s of speech from {', '.join(files)}")
    if y is None:
        return 0
    if not args.json:
        print(f"who speaks in {args.input} (group {args.group!r}: {', '.join(members(sid, args.group))}):")

    def show(t) -> None:
        if args.json:
            print(json.dumps({"start": t.start_s, "end": t.end_s, "speaker": t.speaker, "score": t.score}), flush=True)
        else:
            print(f"  {t.start_s:7.2f} - {t.end_s:7.2f} s  {t.speaker:<16} score {t.score:.3f}", flush=True)
        if log:
            log.turn(t)

    turns, _ = stream_turns(y, sid.classifier(args.group), sid.extractor, on_turn=show)
    if log:
        log.close()
    if not turns:
        raise AudioError(args.input, "no speech long enough to identify")
    return 0


def check_log_path(path) -> str:
    """A session log path whose folder exists (nothing is created to make one)."""
    from pathlib import Path

    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found (for --log {path})")
    return str(path)


# ---------------------------------------------------------------------------- live mode
def run_live(args) -> int:
    if args.log:
        check_log_path(args.log)
    # Ctrl-C is how a session ends: started from a script's background job, a process inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ui = Terminal()
    with Microphone(args.device) as mic:
        ui.say(f"Microphone: {mic.description}; another one: --list-devices, --device N")
        ui.say("Loading the speaker model ...")
        sid = load_identifier(args)
        mic.set_rate(sid.extractor.feature_config.sr)
        ui.say(f"Model {sid.extractor.model_id}; enrollments in {sid.store.path}")
        return LiveSession(args, sid, mic, ui).run()


def main(argv=None, prog: str = "python demo/live.py") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.json and not args.input:
        parser.error("--json goes with --input FILE")
    from ..commands import exit_status

    def run() -> int:
        if args.enroll or args.input:
            return run_files(args)
        try:
            if args.list_devices:
                print(list_devices())
                return 0
            return run_live(args)
        except NoMicrophone as exc:
            advice = "\n".join(f"  {c}" for c in file_mode_advice(args))
            print(
                f"error: no microphone to record from: {exc}\nWithout one, the demo runs on recordings "
                f"(--enroll NAME=FILE ... --input FILE); with example recordings of two people:\n{advice}",
                file=sys.stderr,
            )
            return 2

    return exit_status(run, interrupted="interrupted; nothing half-done was stored")


if __name__ == "__main__":
    raise SystemExit(main())
