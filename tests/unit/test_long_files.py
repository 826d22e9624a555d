"""Long recordings cost memory for what is used of them, not for their length."""

import tracemalloc

import numpy as np
import pytest

from synth import write_wav


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    """The same speech looped to 2 and to 8 minutes."""
    from synth import VOICES, synth_voice

    y, d = synth_voice(**VOICES["ann"], seconds=30.0, seed=1), tmp_path_factory.mktemp("long")
    return {m: write_wav(d / f"{m}min.wav", np.tile(y, 2 * m)) for m in (2, 8)}


def peak_mb(work) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()


def test_enrollment_reads_only_the_speech_it_uses(identifier, wavs):
    identifier.max_enroll_s = 20.0
    mb = {m: peak_mb(lambda: identifier.enroll(f"g{m}", "ann", [f])) for m, f in wavs.items()}
    assert all(19.0 <= identifier.store.speakers(f"g{m}")[0].seconds <= 20.0 for m in wavs)
    assert mb[8] < mb[2] + 4, f"peak {mb} MB: memory grows with the file's length"  # 8 min: 31 MB as float32
