"""Skip markers for tests that need an optional extra that ``scripts/setup.sh`` does not install."""

import importlib.util

import pytest

# find_spec, not importorskip: importing PyTorch at collection would load it in every test process of the suite
needs_teacher = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="the teacher extra (pip install -e '.[teacher]') is not installed"
)
