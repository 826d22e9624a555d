"""The code passes ruff's lint rules and is formatted as ruff formats it (settings: ``[tool.ruff]``).

Run alone with ``.venv/bin/python -m pytest -m lint -n 0``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("fewshot", "data_tools", "scripts", "tests", "demo")

pytestmark = pytest.mark.lint


def ruff(*args: str) -> subprocess.CompletedProcess:
    # --no-cache: nothing written into the tree, and no cache shared by concurrent runs
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", *FOLDERS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ruff_check_finds_nothing():
    out = ruff("check", "--output-format", "concise")
    assert out.returncode == 0, f"ruff check:\n{out.stdout}{out.stderr}"


def test_ruff_format_would_change_nothing():
    out = ruff("format", "--check", "--output-format", "concise")  # one line per file; `ruff format --diff` shows how
    assert out.returncode == 0, f"ruff format --check:\n{out.stdout}{out.stderr}"
