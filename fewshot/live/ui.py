"""The live demo's terminal (prompts, a level meter, single keys) and its session log."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import select
import sys
import textwrap
import time
from pathlib import Path

METER_DB = (-60.0, 0.0)
METER_WIDTH = 24


def clock(seconds: float) -> str:
    """``mm:ss.s``."""
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m):02d}:{s:04.1f}"


class Terminal:
    """Lines, prompts and one redrawn status line (the meter) on standard output."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        utf8 = (getattr(self.out, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self.full, self.empty = ("█", "·") if utf8 else ("#", "-")
        self._status = False
        self._drawn = 0.0

    def say(self, text: str = "") -> None:
        """Print ``text``; lines wider than the terminal wrap between words, keeping their indent
        (a word longer than a line, such as a path, is never cut)."""
        self._clear()
        width = max(40, _columns() - 1)
        lines = []
        for line in text.split("\n"):
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(
                textwrap.fill(
                    line, width=width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
                )
                if len(line) > width
                else line
            )
        print("\n".join(lines), file=self.out, flush=True)

    def say_wrapped(self, text: str, *, indent: str = "") -> None:
        width = min(88, max(40, _columns() - 2))
        self.say(textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent))

    def ask(self, prompt: str) -> str:
        self._clear()
        return input(prompt)

    def ask_key(self, prompt: str) -> str:
        answer = self.ask(prompt).strip().lower()
        return answer[:1]

    def status(self, text: str, *, force: bool = False) -> None:
        """Redraw the status line (at most 10 times a second); nothing when not a terminal."""
        now = time.monotonic()
        if not self.tty or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        self.out.write("\r\x1b[K" + text[: max(20, _columns() - 1)])
        self.out.flush()
        self._status = True

    def meter(self, level_dbfs: float, text: str, *, alert: str = "") -> None:
        lo, hi = METER_DB
        n = int(round(METER_WIDTH * min(1.0, max(0.0, (level_dbfs - lo) / (hi - lo)))))
        bar = self.full * n + self.empty * (METER_WIDTH - n)
        self.status(f"  level {bar} {max(level_dbfs, -99):4.0f} dBFS   {text}{'   ' + alert if alert else ''}")

    def end_status(self) -> None:
        self._clear()

    def _clear(self) -> None:
        if self._status:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._status = False

    @contextlib.contextmanager
    def keys(self):
        """Read single keys without Enter (on a terminal) while the block runs."""
        reader = _KeyReader()
        fd = reader.fd
        saved = None
        if fd is not None and os.isatty(fd):
            import termios
            import tty

            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)  # not TCSAFLUSH: keep a key typed a moment ago
        try:
            yield reader
        finally:
            if saved is not None:
                import termios

                termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _KeyReader:
    def __init__(self):
        try:
            self.fd = sys.stdin.fileno()
        except (AttributeError, ValueError, OSError):
            self.fd = None

    def poll(self) -> str:
        """A key pressed since the last call (lower case), ``"q"`` at end of input, else ``""``."""
        if self.fd is None or not select.select([self.fd], [], [], 0)[0]:
            return ""
        data = os.read(self.fd, 64)
        if not data:
            return "q"
        text = data.decode(errors="replace").strip().lower()
        return text[:1] if text else "\n"


def _columns() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 80


class SessionLog:
    """What was heard, when, and who it was: a tab-separated file, written line by line.

    Columns: ``time`` (local, ISO 8601), ``event`` (``turn``, ``enrolled``,
    ``re-enrolled``, ``removed``, ``dropped``, ``listening``, ``stopped``), ``start_s`` and
    ``end_s`` (of a final turn: seconds since the session began, one clock for the whole session;
    in file mode, seconds of the input), ``speaker``, ``score``, ``note``.
    """

    COLUMNS = ("time", "event", "start_s", "end_s", "speaker", "score", "note")

    def __init__(self, path, *, group: str, model: str, make_folder: bool = False):
        self.path = Path(path)
        if make_folder:  # the default sessions/ folder next to the store
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not self.path.exists() or self.path.stat().st_size == 0
        # names and times of people: readable by the owner only, like the store
        self._f = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a", encoding="utf-8")
        if new:
            self._f.write(
                f"# fewshot live session: group {group!r}, model {model}, "
                f"started {dt.datetime.now().isoformat(timespec='seconds')}\n"
            )
            self._f.write("\t".join(self.COLUMNS) + "\n")
            self._f.flush()

    @staticmethod
    def default_path(store_path, group: str) -> Path:
        stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", group) or "group"
        return Path(store_path).parent / "sessions" / f"{stamp}_{safe}.tsv"

    def _row(self, *cells) -> None:
        if self._f.closed:
            return
        now = dt.datetime.now().isoformat(timespec="milliseconds")
        self._f.write("\t".join([now, *(str(c).replace("\t", " ") for c in cells)]) + "\n")
        self._f.flush()

    def event(self, kind: str, speaker: str, note: str = "") -> None:
        self._row(kind, "", "", speaker, "", note)

    def turn(self, t) -> None:
        """A final :class:`~fewshot.turns.decoder.Turn`."""
        self._row("turn", f"{t.start_s:.2f}", f"{t.end_s:.2f}", t.speaker, f"{t.score:.4f}", "")

    def close(self) -> None:
        self._f.close()
