"""The live demo's interactive loop: enroll people from the microphone, listen, keys in between."""

from __future__ import annotations

import time

from ..errors import InvalidNameError
from ..names import normalize_name
from .mic import Microphone, NoMicrophone
from .speech import EnrollmentTake
from .texts import passage
from .turns import TurnStream
from .ui import SessionLog, Terminal, clock


def members(sid, group: str) -> list[str]:
    """Names enrolled in ``group`` (none for a group that does not exist yet)."""
    from ..errors import NotEnrolledError

    try:
        return [s.name for s in sid.store.speakers(group)]
    except NotEnrolledError:
        return []


class LiveSession:
    """The interactive loop: enroll people, listen, and the keys in between."""

    KEYS = "keys: a add a person, r re-enroll, x remove, q quit"

    def __init__(self, args, sid, mic: Microphone, ui: Terminal):
        self.args, self.sid, self.mic, self.ui = args, sid, mic, ui
        self.group = args.group
        self.enrolling: str | None = None
        self.n_takes = 0
        self.t0 = time.monotonic()  # one clock per session: every label's time counts from here
        self.log = SessionLog(
            args.log or SessionLog.default_path(sid.store.path, args.group),
            group=args.group,
            model=sid.extractor.model_id,
            make_folder=not args.log,
        )

    def members(self) -> list[str]:
        return members(self.sid, self.group)

    def run(self) -> int:
        try:
            return self._run()
        except (KeyboardInterrupt, NoMicrophone) as exc:
            self.ui.say()
            why = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else "the microphone failed"
            if self.enrolling:
                earlier = "; their earlier enrollment is kept" if self.enrolling in self.members() else ""
                self.ui.say(
                    f"Stopped: the enrollment of {self.enrolling!r} was not finished and is dropped "
                    f"(nothing of it was stored{earlier})."
                )
                self.log.event("dropped", self.enrolling, f"enrollment interrupted ({why})")
            kept = self.members()
            self.ui.say(f"Kept in group {self.group!r}: {', '.join(kept) if kept else 'nobody'}.")
            self.log.event("stopped", "", why)
            if isinstance(exc, NoMicrophone):
                raise
            return 130
        except EOFError:
            self.ui.say()
            self.log.event("stopped", "", "end of input")
            return 0
        finally:
            self.ui.say("Session log:")
            self.ui.say(f"  {self.log.path}")
            self.log.close()

    def _run(self) -> int:
        people = self.members()
        self.ui.say("Session log:")
        self.ui.say(f"  {self.log.path}")
        if people:
            self.ui.say(f"Enrolled in group {self.group!r}: {', '.join(people)}.")
        else:
            self.ui.say(
                f"Nobody is enrolled in group {self.group!r} yet: enroll each person in turn "
                f"(about {self.args.seconds:g} s of speech each; two people or more)."
            )
            self.enroll_people(loop=True)
        while True:
            key = self.listen() if self.members() else self.ui.ask_key(f"Nobody is enrolled. {self.KEYS}: ")
            if key == "q":
                self.log.event("stopped", "", "quit")
                self.ui.say("Bye.")
                return 0
            if key == "a":
                self.enroll_people(loop=False)
            elif key == "r":
                self.re_enroll()
            elif key == "x":
                self.remove()

    # ------------------------------------------------------------ enrolling
    def enroll_people(self, *, loop: bool) -> None:
        while True:
            people = self.members()
            if people and loop:
                prompt = "Name of the next person (just Enter to start listening): "
            elif people or not loop:
                prompt = "Name of the person to enroll (just Enter to go back): "
            else:
                prompt = "Name of the person to enroll: "
            name = self.ui.ask(prompt).strip()
            if not name:
                if people or not loop:
                    return
                continue
            try:
                name = normalize_name(name, kind="person")
            except InvalidNameError as exc:
                self.ui.say(f"{exc}; type another name.")
                continue
            if name.lower() == "unknown":
                self.ui.say("'unknown' is the answer for voices that match nobody: choose another name.")
                continue
            replace = False
            if name in people:
                if not self.ui.ask(f"{name!r} is already enrolled. Record them again? [y/N] ").lower().startswith("y"):
                    continue
                replace = True
            self.record(name, replace=replace)
            if not loop:
                return

    def re_enroll(self) -> None:
        people = self.members()
        name = self.ui.ask(f"Re-enroll whom ({', '.join(people)}; Enter to go back)? ").strip()
        if name and name not in people:
            self.ui.say(f"{name!r} is not enrolled in group {self.group!r}.")
        elif name:
            self.record(name, replace=True)

    def remove(self) -> None:
        people = self.members()
        name = self.ui.ask(f"Remove whom ({', '.join(people)}; Enter to go back)? ").strip()
        if name and name not in people:
            self.ui.say(f"{name!r} is not enrolled in group {self.group!r}.")
        elif name:
            self.sid.store.remove_speaker(self.group, name)
            self.log.event("removed", name, "voiceprint deleted")
            self.ui.say(f"Removed {name!r} and their voiceprint from group {self.group!r}.")

    def record(self, name: str, *, replace: bool) -> bool:
        """Record ``name`` reading aloud, then enroll them; ``False`` when nothing was stored."""
        from ..errors import AudioError, IncoherentEnrollmentError

        target = self.args.seconds
        source, text = passage(self.n_takes)
        self.n_takes += 1
        self.ui.say(
            f"\n{name}, please read this aloud in your normal voice until {target:g} s of speech "
            "are recorded (silence does not count):\n"
        )
        self.ui.say_wrapped(text, indent="    ")
        self.ui.say(f"    ({source})\n")
        self.ui.ask("Press Enter to start recording (Ctrl-C quits) ")
        self.enrolling = name
        for i in range(self.args.countdown, 0, -1):
            self.ui.status(f"Recording in {i} ...", force=True)
            time.sleep(1)
        self.ui.say(f"Recording {name}: read now.")
        take = EnrollmentTake(sr=self.sid.extractor.feature_config.sr)
        self.mic.capture(True)
        started, hinted, shown = time.monotonic(), False, 0.0
        while take.speech_s < target and time.monotonic() - started < 3 * target + 30:
            block = self.mic.read(0.2)
            if block is not None:
                take.add(block)
            self.ui.meter(
                take.level_dbfs,
                f"speech {take.speech_s:4.1f} / {target:g} s",
                alert="CLIPPING: move back"
                if take.clipping_now
                else "too quiet: come closer"
                if take.too_quiet_now
                else "",
            )
            if not self.ui.tty and take.speech_s - shown >= 5:
                shown = take.speech_s
                self.ui.say(f"  speech {take.speech_s:4.1f} / {target:g} s")
            if not hinted and take.speech_s < 0.5 and time.monotonic() - started > 10:
                hinted = True
                self.ui.say("  No speech heard yet: is it the right microphone? (see --list-devices, --device)")
        self.mic.capture(False)
        self.ui.end_status()
        if take.speech_s < target:
            self.ui.say(f"Stopped after {take.seconds:.0f} s of recording with {take.speech_s:.1f} s of speech.")
        if take.speech_s < min(target, 10.0):
            self.ui.say(f"Only {take.speech_s:.1f} s of speech heard: {name!r} is not enrolled.")
            self.log.event("dropped", name, f"only {take.speech_s:.1f} s of speech")
            self.enrolling = None
            return False
        self.ui.say("Enrolling ...")
        try:
            res = self.sid.enroll(self.group, name, take.audio(), replace=replace)
        except IncoherentEnrollmentError as exc:
            self.enrolling = None
            self.ui.say(f"{name!r} is not enrolled: {exc.finding}")
            self.log.event("dropped", name, "more than one voice heard")
            if self.ui.ask(f"Record {name} again, alone? [Y/n] ").strip().lower().startswith("n"):
                return False
            return self.record(name, replace=replace)
        except AudioError as exc:
            self.ui.say(f"{name!r} is not enrolled: {exc.reason}.")
            self.enrolling = None
            return False
        self.enrolling = None
        for w in take.warnings() + list(res.warnings):
            self.ui.say(f"warning: {w}")
        what = "re-enrolled" if replace else "enrolled"
        self.ui.say(
            f"{what.capitalize()} {name!r} in group {self.group!r}: {res.seconds_used:.1f} s of speech, "
            f"{res.n_segments} segments."
        )
        self.log.event(what, name, f"{res.seconds_used:.1f} s of speech")
        return True

    # ------------------------------------------------------------ identifying
    def listen(self) -> str:
        """Name who speaks until a key is pressed; returns that key.

        The current turn's provisional speaker is on the status line (revised as speech comes in); a line is
        printed for each turn once it is final (the next speaker confirmed, a pause, or the key).
        """
        people = self.members()
        self.ui.say(f"\nListening for {', '.join(people)} (group {self.group!r}); {self.KEYS}.")
        self.log.event("listening", "", ", ".join(people))
        stream = TurnStream(self.sid.classifier(self.group), self.sid.extractor)
        self.mic.capture(True)
        offset = time.monotonic() - self.t0

        def show(turns) -> None:
            for t in turns:
                t = t._replace(start_s=round(t.start_s + offset, 2), end_s=round(t.end_s + offset, 2))
                self.ui.say(f"  [{clock(t.start_s)} - {clock(t.end_s)}]  {t.speaker:<16} score {t.score:.3f}")
                self.log.turn(t)

        try:
            with self.ui.keys() as keys:
                while True:
                    key = keys.poll()
                    if key in ("a", "r", "x", "q"):
                        show(stream.flush())
                        return key
                    if key:
                        self.ui.say(self.KEYS)
                    block = self.mic.read(0.1)
                    if block is None:
                        continue
                    show(stream.add(block))
                    cur = stream.current
                    now = f"   now: {cur.speaker} ({cur.score:.2f}) since {clock(cur.start_s + offset)}" if cur else ""
                    self.ui.meter(stream.level_dbfs, "listening" + now)
        finally:
            self.mic.capture(False)
            self.ui.end_status()
