"""The VAD comparison's wrappers and scoring (fewshot.eval.vad_compare) on synthetic speech with a known layout."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from fewshot.eval import vad_compare as vc
from synth import SR, VOICES, synth_voice


@pytest.fixture(scope="module")
def utterance():
    # 3 s of a synthetic voice (a 0.25 s pause every 2 s), so 1 s of digital silence each side once padded
    return synth_voice(**VOICES["bob"], seconds=3.0, seed=3)


def test_padding_frames_are_where_the_silence_is(utterance):
    pad_only = vc.padding_mask(len(utterance))
    assert len(pad_only) == vc.n_frames(len(utterance) + 2 * SR)
    # 1 s of padding each side: about 100 frames, less the frames that straddle the edge
    assert 95 <= pad_only[:150].sum() <= 100 and 95 <= pad_only[-150:].sum() <= 100
    assert not pad_only[110:-110].any()


def test_energy_vad_false_alarms_rise_on_noisy_padding(utterance):
    clean = vc.pad(utterance)
    ref = vc.energy_mask(clean)
    pad_only = vc.padding_mask(len(utterance))
    on_clean = vc.score(vc.energy_mask(clean), ref, pad_only)
    noisy = vc.degraded(utterance, vc.Condition("ssn5", "ssn", 5.0), index=0)
    on_noisy = vc.score(vc.energy_mask(noisy), ref, pad_only)

    assert on_clean["padding_false_alarm"] == 0.0 and on_clean["false_alarm"] == 0.0 and on_clean["miss"] == 0.0
    # speech-shaped noise 5 dB below the speech lies well within 35 dB of the loudest frame: the padding is "speech"
    assert on_noisy["padding_false_alarm"] > 0.5
    assert on_noisy["noise_share_of_kept"] > on_clean["noise_share_of_kept"]
    # the reference found the speech where it was put
    assert ref[pad_only].sum() == 0 and ref[~pad_only].mean() > 0.6


def test_scoring_counts_by_hand():
    ref = np.array([0, 0, 1, 1, 1, 0], bool)
    mask = np.array([1, 0, 1, 0, 1, 0], bool)
    pad_only = np.array([1, 1, 0, 0, 0, 0], bool)
    r = vc.score(mask, ref, pad_only)
    assert r["false_alarm"] == pytest.approx(1 / 3) and r["miss"] == pytest.approx(1 / 3)
    assert r["noise_share_of_kept"] == pytest.approx(1 / 3) and r["padding_false_alarm"] == pytest.approx(1 / 2)
    with pytest.raises(ValueError):
        vc.score(mask[:-1], ref)


def _silero_installed() -> bool:
    return importlib.util.find_spec("silero_vad") is not None


@pytest.mark.parametrize("n", [SR * 3 + 1, SR * 3 + 160, SR * 3 + 479, 4000])
def test_wrappers_return_one_decision_per_grid_frame(utterance, n):
    pytest.importorskip("webrtcvad", reason="webrtcvad-wheels is not installed (pip install webrtcvad-wheels)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    if not _silero_installed():
        pytest.skip("silero-vad is not installed (pip install --no-deps silero-vad==6.2.3)")
    y = vc.pad(utterance)[:n]
    dets = vc.detectors(silero=vc.SileroSequence())
    assert set(dets) == {"energy35", "webrtc1", "webrtc2", "webrtc3", "silero0.5"}
    for name, fn in dets.items():
        mask = fn(y)
        assert mask.dtype == bool and mask.shape == (vc.n_frames(n),), name
    for frame_ms in (10, 20):
        assert vc.webrtc_mask(y, mode=2, frame_ms=frame_ms).shape == (vc.n_frames(n),)


def test_silero_sequence_model_gives_the_streaming_models_probabilities(utterance):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    if not _silero_installed():
        pytest.skip("silero-vad is not installed (pip install --no-deps silero-vad==6.2.3)")
    y = vc.pad(utterance)
    stream, seq = vc.SileroOnnx().probs(y), vc.SileroSequence(max_frames=40).probs(y)
    assert stream.shape == seq.shape == (-(-len(y) // 512),)
    np.testing.assert_allclose(seq, stream, atol=1e-5)
    # the padding is silence to silero, the voice is speech
    assert stream[:25].max() < 0.5 and stream[40:100].mean() > 0.5
