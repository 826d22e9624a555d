import numpy as np
import pytest

from fewshot.audio.features import log_mel, save_spectrogram_png, segment
from fewshot.config import FeatureConfig


def test_log_mel_shape_and_finite(voice):
    cfg = FeatureConfig()
    S = log_mel(voice("ann", 2.0), config=cfg)
    assert S.shape == (201, cfg.n_mels)
    assert np.all(np.isfinite(S))


def test_segment_shorter_than_one_segment_is_wrapped():
    S = np.arange(10 * 3, dtype=float).reshape(10, 3)
    out = segment(S, seg_frames=25, hop_frames=5)
    assert out.shape == (1, 25, 3)
    np.testing.assert_array_equal(out[0, 10:20], S)


def test_segment_covers_the_tail():
    S = np.arange(23)[:, None].astype(float)
    out = segment(S, seg_frames=10, hop_frames=5)
    assert [int(s[0, 0]) for s in out] == [0, 5, 10, 13]
    assert out[-1, -1, 0] == 22


def test_segment_rejects_bad_input():
    with pytest.raises(ValueError, match="S.shape"):
        segment(np.zeros((0, 4)), seg_frames=3, hop_frames=1)


def test_segments_follow_the_config(voice):
    cfg = FeatureConfig(segment_s=1.0, segment_hop_s=0.5)
    segs = segment(
        log_mel(voice("bob", 3.0), config=cfg), seg_frames=cfg.segment_frames, hop_frames=cfg.segment_hop_frames
    )
    # 301 frames: starts at 0, 50, ..., 200 and one more aligned to the end
    assert segs.shape[1:] == (100, cfg.n_mels) and len(segs) == 6


def test_spectrogram_png(voice, tmp_path):
    out = tmp_path / "spec.png"
    save_spectrogram_png(voice("cat", 2.0), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore:n_fft=512 is too large:UserWarning")  # librosa's, on the short inputs
@pytest.mark.parametrize("n", [1, 399, 16000, 16001, 48037])
def test_log_mel_is_librosas_melspectrogram(voice, n):
    import librosa

    cfg = FeatureConfig()
    y = np.resize(voice("bob", 3.1), n) * np.linspace(0.01, 1.0, n, dtype=np.float32)  # quiet to loud
    ref = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sr,
        n_fft=cfg.n_fft,
        win_length=cfg.win_length,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin_hz,
        fmax=cfg.fmax_hz,
        power=2.0,
        center=True,
    ).T
    np.testing.assert_allclose(np.exp(log_mel(y, config=cfg)) - 1e-6, ref, rtol=1e-5, atol=1e-9)


def test_log_mel_of_a_batch_is_each_signal_alone(voice):
    Y = np.stack([voice("ann", 1.5), voice("bob", 1.5), voice("cat", 1.5)])
    S = log_mel(Y)
    assert S.shape == (3, 151, 64)
    np.testing.assert_allclose(S[2], log_mel(Y[2]), atol=1e-6)


def test_mel_filterbank_is_librosas():
    import librosa

    from fewshot.audio.features import mel_filterbank

    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=20.0, fmax=7600.0)
    np.testing.assert_allclose(
        mel_filterbank(sr=16000, n_fft=512, n_mels=64, fmin=20.0, fmax=7600.0), ref, rtol=1e-5, atol=1e-9
    )
