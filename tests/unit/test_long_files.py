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
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_enrollment_reads_only_the_speech_it_uses(identifier, wavs):
    identifier.max_enroll_s = 20.0
    mb = {m: peak_mb(lambda: identifier.enroll(f"g{m}", "ann", [f])) for m, f in wavs.items()}
    assert all(19.0 <= identifier.store.speakers(f"g{m}")[0].seconds <= 20.0 for m in wavs)
    assert mb[8] < mb[2] + 4, f"peak {mb} MB: memory grows with the file's length"  # 8 min: 31 MB as float32


def test_turns_of_a_scanned_file_are_those_of_the_file_read_whole(identifier, voice, tmp_path):
    from fewshot.audio.decode import load
    from fewshot.turns.decoder import find_turns
    from fewshot.turns.timeline import SpeechTimeline
    from synth import conversation

    for i, name in enumerate(("ann", "bob")):
        identifier.enroll("g", name, [voice(name, 10.0, seed=i)])
    y, _ = conversation([("ann", 4.0, 0.3), ("bob", 5.0, 1.0), ("ann", 3.0, 0.6), ("bob", 6.0, 0.2)] * 2)
    path = write_wav(tmp_path / "talk.wav", y)
    whole = SpeechTimeline(load(path), config=identifier.extractor.feature_config)
    scanned = SpeechTimeline.scan(path, config=identifier.extractor.feature_config, block_s=7.3)
    np.testing.assert_array_equal(scanned.intervals, whole.intervals)
    np.testing.assert_allclose(np.concatenate(list(scanned.chunks())), whole.speech, rtol=1e-5, atol=1e-7)
    clf = identifier.classifier("g")
    expected = find_turns(load(path), clf, identifier.extractor)
    assert find_turns(scanned, clf, identifier.extractor) == expected and len(expected) >= 2


def test_turns_of_a_long_file_take_flat_memory(identifier, voice, wavs):
    identifier.enroll("g", "ann", [voice("ann", 10.0)])
    identifier.enroll("g", "bob", [voice("bob", 10.0)])
    mb = {m: peak_mb(lambda: identifier.turns("g", f)) for m, f in wavs.items()}
    assert mb[8] < mb[2] + 8, f"peak {mb} MB: memory grows with the file's length"  # 8 min: 31 MB as float32
