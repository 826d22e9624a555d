"""The live demo's microphone: pick a PortAudio input, record 16 kHz mono blocks.

``sounddevice`` is imported lazily (it needs the PortAudio C library), and every
way of not having a usable microphone ends in :class:`NoMicrophone`, whose
message is one line for the user, never a traceback.
"""

from __future__ import annotations

import queue

import numpy as np

from .._native import quiet_stderr
from ..audio.decode import SAMPLE_RATE as SR
from ..audio.decode import resampler

#: Rates tried, in order, when a device will not record at 16 kHz (then resampled).
FALLBACK_RATES = (48000, 44100, 32000, 22050)
INSTALL_HINT = "pip install sounddevice (and the PortAudio library: apt-get install libportaudio2)"


class NoMicrophone(Exception):
    """No usable input: PortAudio missing, no input device, or one that fails to open."""


def import_sounddevice():
    """``sounddevice``, or :class:`NoMicrophone` saying what to install."""
    try:
        with quiet_stderr():
            import sounddevice
    except ImportError as exc:
        raise NoMicrophone(f"the sounddevice package is not installed ({exc}); {INSTALL_HINT}") from exc
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise NoMicrophone(f"PortAudio is not available ({exc}); {INSTALL_HINT}") from exc
    return sounddevice


def input_devices(sd) -> list[dict]:
    """PortAudio's devices that can record, with their host API's name."""
    with quiet_stderr():
        devices = sd.query_devices()
        apis = sd.query_hostapis()
    return [dict(d, hostapi_name=apis[d["hostapi"]]["name"]) for d in devices if d["max_input_channels"] > 0]


def pick_device(sd, spec=None) -> dict:
    """The input device ``spec`` names (index or part of its name), else the default one.

    Raises
    ------
    NoMicrophone
        When there is no input device, or none matches ``spec``.
    """
    inputs = input_devices(sd)
    if not inputs:
        raise NoMicrophone("PortAudio finds no input device (no microphone, or no sound server running)")
    if spec is None or str(spec).strip() == "":
        try:
            with quiet_stderr():
                default = sd.query_devices(kind="input")["index"]
        except Exception:
            default = None
        return next((d for d in inputs if d["index"] == default), inputs[0])
    spec = str(spec).strip()
    names = ", ".join(f"{d['index']} {d['name']!r}" for d in inputs)
    if spec.isdigit():
        for d in inputs:
            if d["index"] == int(spec):
                return d
        raise NoMicrophone(f"there is no input device number {spec} (inputs: {names})")
    matches = [d for d in inputs if spec.lower() in d["name"].lower()]
    exact = [d for d in matches if d["name"].lower() == spec.lower()]
    if exact:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NoMicrophone(f"no input device matches {spec!r} (inputs: {names})")
    raise NoMicrophone(
        f"{spec!r} matches several input devices ({', '.join(d['name'] for d in matches)}); give its number"
    )


def stream_settings(sd, device: dict) -> tuple[int, int]:
    """``(samplerate, channels)`` the device accepts: 16 kHz mono if it can, else a common rate."""
    rates = [SR, int(device.get("default_samplerate") or 0), *FALLBACK_RATES]
    channel_options = sorted({1, min(2, device["max_input_channels"])})
    last = None
    for channels in channel_options:
        for rate in dict.fromkeys(r for r in rates if r > 0):
            try:
                with quiet_stderr():
                    sd.check_input_settings(device=device["index"], channels=channels, dtype="float32", samplerate=rate)
                return rate, channels
            except Exception as exc:
                last = exc
    raise NoMicrophone(f"input device {device['name']!r} records at none of 16/44.1/48 kHz ({last})")


class Microphone:
    """An open input stream delivering 16 kHz mono float32 blocks.

    Blocks are kept only while :meth:`capture` is on, so menus and prompts
    never fill memory. Use as a context manager (the stream is closed on exit,
    Ctrl-C included).
    """

    def __init__(self, device=None, *, sr: int = SR, block_s: float = 0.05):
        self.sd = import_sounddevice()
        self.device = pick_device(self.sd, device)
        self.rate, self.channels = stream_settings(self.sd, self.device)
        self._queue: queue.Queue = queue.Queue()
        self._capturing = False
        self.overflows = 0
        self.set_rate(sr)
        try:
            with quiet_stderr():
                self.stream = self.sd.InputStream(
                    device=self.device["index"],
                    channels=self.channels,
                    samplerate=self.rate,
                    dtype="float32",
                    blocksize=int(self.rate * block_s),
                    callback=self._callback,
                )
                self.stream.start()
        except Exception as exc:
            raise NoMicrophone(f"input device {self.device['name']!r} fails to open: {exc}") from exc

    def set_rate(self, sr: int) -> None:
        """Deliver blocks at ``sr`` Hz (the model's), through :func:`fewshot.audio.decode.resampler` if the device's rate
        differs (the blocks kept so far are dropped)."""
        self.sr, self._resampler = sr, None if self.rate == sr else resampler(self.rate, sr)
        self.capture(False)

    @property
    def description(self) -> str:
        note = "" if self.rate == self.sr else f", recorded at {self.rate} Hz and resampled to {self.sr} Hz"
        return f"{self.device['name']} ({self.device['hostapi_name']}, device {self.device['index']}{note})"

    def _callback(self, indata, frames, time_info, status):
        if status and status.input_overflow:
            self.overflows += 1
        if self._capturing:
            self._queue.put(indata.mean(axis=1) if self.channels > 1 else indata[:, 0].copy())

    def capture(self, on: bool = True) -> None:
        """Start (dropping anything older) or stop keeping blocks."""
        self._capturing = False
        while not self._queue.empty():
            self._queue.get_nowait()
        self._capturing = on

    def read(self, timeout: float = 0.2) -> np.ndarray | None:
        """All audio that came in (16 kHz mono float32), waiting up to ``timeout`` s for some; else ``None``."""
        try:
            blocks = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            if not self.stream.active:
                raise NoMicrophone(f"input device {self.device['name']!r} stopped delivering audio") from None
            return None
        while not self._queue.empty():  # after a slow step, catch up at once
            blocks.append(self._queue.get_nowait())
        block = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block, last=False)
        return np.asarray(block, dtype=np.float32)

    def close(self) -> None:
        self._capturing = False
        with quiet_stderr():
            for step in (self.stream.abort, self.stream.close):
                try:
                    step()
                except Exception:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def list_devices() -> str:
    """A table of input devices for ``--list-devices``."""
    sd = import_sounddevice()
    inputs = input_devices(sd)
    if not inputs:
        raise NoMicrophone("PortAudio finds no input device (no microphone, or no sound server running)")
    default = pick_device(sd)["index"]
    return "\n".join(
        f"{'*' if d['index'] == default else ' '} {d['index']:3d}  {d['name']}  "
        f"({d['hostapi_name']}, {d['max_input_channels']} in, {d['default_samplerate']:.0f} Hz)"
        for d in inputs
    )
