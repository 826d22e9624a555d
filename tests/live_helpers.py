"""Helpers for the live demo's tests: a virtual microphone, terminal rendering.

The virtual microphone is a real PulseAudio daemon, started per test session
with ``module-pipe-source``: what is written into its FIFO (s16le, 16 kHz,
mono) is what ``sounddevice`` records from the ALSA ``pulse`` (or ``default``)
device. Nothing of the audio stack is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SR = 16000


# ---------------------------------------------------------------------------- microphone
class PulseUnavailable(RuntimeError):
    pass


def _die_with_parent():
    """In the child: get SIGTERM when the test process dies, so no daemon outlives a killed run."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class VirtualMic:
    """A PulseAudio daemon whose default source is a FIFO we write speech into.

    Use as a context manager; :attr:`env` is the environment a child process
    needs to record from it (``PULSE_SERVER``, ``HOME``, ...). :meth:`play`
    writes audio paced in real time and records when its last sample went in.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.fifo = self.root / "mic.fifo"
        self.socket = self.root / "native"
        self.proc = None
        self._fd = None
        self._lock = threading.Lock()
        self._queue: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = None
        self.samples_written = 0
        #: per tagged array: ``{"tag", "start", "end", "chunks"}``: wall times its first and last samples were
        #: written, and ``(samples written so far, wall time)`` after each write
        self.events: list[dict] = []

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            HOME=str(self.root),
            XDG_RUNTIME_DIR=str(self.root),
            PULSE_RUNTIME_PATH=str(self.root / "pulse"),
            PULSE_SERVER=f"unix:{self.socket}",
        )
        env.pop("DISPLAY", None)
        return env

    def __enter__(self):
        exe = shutil.which("pulseaudio")
        if exe is None:
            raise PulseUnavailable(
                "pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        for p in (self.fifo, self.socket):
            if p.exists() or p.is_symlink():
                p.unlink()
        self.log = open(self.root / "pulseaudio.log", "wb")
        self.proc = subprocess.Popen(
            [
                exe,
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--use-pid-file=no",
                "--disable-shm=yes",
                "--log-target=stderr",
                "-L",
                f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
                "-L",
                f"module-pipe-source source_name=fifo_mic file={self.fifo} format=s16le rate={SR} channels=1",
                "-L",
                "module-null-sink sink_name=null_out",
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 15
        while not (self.socket.exists() and self.fifo.exists()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                tail = (self.root / "pulseaudio.log").read_text(errors="replace")[-600:]
                raise PulseUnavailable(f"PulseAudio did not start: {tail.strip()}")
            time.sleep(0.05)
        for cmd in (["pactl", "set-default-source", "fifo_mic"], ["pactl", "set-default-sink", "null_out"]):
            subprocess.run(cmd, env=self.env, check=False, capture_output=True, timeout=10)
        # Keep the FIFO open for writing and feed it silence, so the source runs at the real-time pace
        # of what we write and recording never stalls.
        self._fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)  # fails at once if PulseAudio is not reading
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        return self

    def _pump(self, chunk_s: float = 0.02):
        """Write queued audio, or silence, in real time: one 20 ms chunk every 20 ms."""
        n = int(chunk_s * SR)
        t0, sent = time.monotonic(), 0
        silence = np.zeros(n, np.int16)
        while not self._stop.is_set():
            with self._lock:
                item = self._queue[0] if self._queue else None
            if item is None:
                out, tag, first, done = silence, None, False, False
            else:
                y, tag, first = item
                out, rest = y[:n], y[n:]
                done = not len(rest)
            data = np.concatenate([out, silence[: n - len(out)]]).tobytes() if len(out) < n else out.tobytes()
            while True:  # a full FIFO (nobody recording) drops silence and holds back audio
                try:
                    os.write(self._fd, data)
                    break
                except BlockingIOError:
                    if item is None or self._stop.wait(0.01):
                        break
                except OSError:
                    return
            now = time.time()
            if item is not None:
                with self._lock:
                    if self._queue and self._queue[0] is item:
                        if done:
                            self._queue.pop(0)
                        else:
                            self._queue[0] = (rest, tag, False)
                if tag is not None:
                    if first:
                        self.events.append({"tag": tag, "start": now, "end": None, "chunks": []})
                    ev = self.events[-1]
                    ev["chunks"].append(((ev["chunks"][-1][0] if ev["chunks"] else 0) + len(out), now))
                    if done:
                        ev["end"] = now
            sent += n
            self.samples_written += n
            delay = t0 + sent / SR - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:  # fell behind (busy machine): do not burst to catch up
                t0, sent = time.monotonic(), 0

    def play(self, y: np.ndarray, tag: str | None = None) -> None:
        """Queue ``y`` (16 kHz float) after whatever is queued; ``tag`` marks its last sample."""
        pcm = (np.clip(y, -1, 1) * 32767).astype(np.int16)
        with self._lock:
            self._queue.append((pcm, tag, True))

    def written_at(self, k: int, seconds: float) -> float:
        """Wall time at which the sample ``seconds`` into the ``k``-th tagged array went into the FIFO."""
        pos = seconds * SR
        return next((t for n, t in self.events[k]["chunks"] if n >= pos), self.events[k]["end"])

    def queued_s(self) -> float:
        with self._lock:
            return sum(len(item[0]) for item in self._queue) / SR

    def wait_played(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.queued_s() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return False


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def trim_ends(y: np.ndarray, *, level: float = 0.01) -> np.ndarray:
    """``y`` without leading and trailing near-silence, so its last sample is speech."""
    loud = np.flatnonzero(np.abs(y) > level)
    return y[loud[0] : loud[-1] + 1] if len(loud) else y


def render_terminal(raw: str) -> str:
    """What a terminal shows of ``raw`` output: redrawn status lines resolved, escapes dropped."""
    import re

    out = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)
        out.append(line.split("\r")[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r"))
    return "\n".join(out)
