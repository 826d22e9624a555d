import subprocess

import numpy as np
import pytest
import soundfile as sf

from fewshot.audio.decode import load
from fewshot.audio.vad import check_audio, load_speech, normalize_loudness, trim_silence
from fewshot.errors import AudioError
from synth import SR, write_wav


@pytest.fixture
def stereo_44k(voice, tmp_path):
    y = voice("ann", 3.0)
    y44 = np.interp(np.arange(int(3.0 * 44100)) / 44100, np.arange(len(y)) / SR, y)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([y44, 0.5 * y44], axis=1), 44100)
    return path


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3", "m4a", "webm"])
def test_load_any_format_to_mono_16k(stereo_44k, tmp_path, fmt):
    path = stereo_44k
    if fmt != "wav":
        path = tmp_path / f"voice.{fmt}"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(stereo_44k), str(path)], check=True)
    y = load(path, sr=SR)
    assert y.dtype == np.float32 and y.ndim == 1
    # encoders pad a little; the length stays within 0.1 s of 3 s
    assert abs(len(y) / SR - 3.0) < 0.1
    assert 0.01 < np.sqrt(np.mean(y**2)) < 1.0


def test_load_array_resamples(voice):
    y = voice("bob", 1.0)
    assert len(load(y, sr=8000, sr_in=SR)) == 8000


@pytest.mark.parametrize(
    "case, reason",
    [
        ("missing", "file not found"),
        ("empty", "empty"),
        ("corrupt", "unreadable or corrupt"),
        ("directory", "directory"),
        ("silent", "all silence"),
        ("nan", "NaN"),
        ("short", "too little speech"),
    ],
)
def test_bad_input_names_file_and_reason(tmp_path, voice, case, reason):
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "corrupt":
        path.write_bytes(b"RIFF\x00\x00garbage" + bytes(range(256)) * 8)
    elif case == "directory":
        path.mkdir()
    elif case == "silent":
        write_wav(path, np.zeros(3 * SR, np.float32))
    elif case == "nan":
        y = voice("ann", 2.0)
        y[100] = np.nan
        sf.write(path, y, SR, subtype="FLOAT")
    elif case == "short":
        y = np.zeros(3 * SR, np.float32)
        y[SR : SR + SR // 2] = voice("ann", 0.5)
        write_wav(path, y)
    with pytest.raises(AudioError, match=reason) as info:
        load_speech(path)
    assert str(path) in str(info.value)


def test_check_audio_rejects_empty_array():
    with pytest.raises(AudioError, match="empty"):
        check_audio(np.zeros(0, np.float32))


def test_trim_silence_cuts_long_pauses_only(voice):
    a, b = voice("ann", 1.0, seed=1), voice("bob", 1.0, seed=2)
    y = np.concatenate([np.zeros(SR // 2), a, np.zeros(int(0.3 * SR)), b, np.zeros(2 * SR), a]).astype(np.float32)
    out = trim_silence(y, sr=SR, max_silence_s=0.5)
    # the 2 s pause and the leading 0.5 s go; the 0.3 s pause stays
    assert 3.2 * SR < len(out) < 3.45 * SR
    assert len(trim_silence(y, sr=SR, max_silence_s=None)) < len(out)


def test_normalize_loudness_hits_target(voice):
    y = 0.01 * voice("cat", 2.0)
    out = normalize_loudness(y, target_dbfs=-23.0)
    assert abs(20 * np.log10(np.sqrt(np.mean(out**2))) + 23.0) < 0.5


@pytest.mark.parametrize("fmt", ["wav", "m4a"])
def test_phase_inverted_stereo_falls_back_to_one_channel(voice, tmp_path, fmt):
    y = voice("bob", 3.0)
    path = tmp_path / "inverted.wav"
    sf.write(path, np.stack([y, -y], axis=1), SR)
    if fmt != "wav":  # through the ffmpeg decoder as well
        enc = tmp_path / f"inverted.{fmt}"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(path), str(enc)], check=True)
        path = enc
    out = load_speech(path).samples  # the plain mixdown would be "all silence"
    assert len(out) > 2 * SR


def test_corrupt_mp3_prints_only_the_error_line(tmp_path, voice):
    good = tmp_path / "good.wav"
    write_wav(good, voice("ann", 4.0))
    mp3 = tmp_path / "broken.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(good), str(mp3)], check=True)
    data = bytearray(mp3.read_bytes())
    for i in range(200, len(data), 97):  # damage frame headers throughout
        data[i] = 0xFF
    mp3.write_bytes(bytes(data))
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "fewshot.cli", "spectrogram", str(mp3), "-o", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
    )
    noise = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("error: ")]
    assert not noise, proc.stderr


def test_vad_frames_are_librosas(voice):
    import librosa

    from fewshot.audio.vad import frame_rms, speech_intervals

    y = np.concatenate([voice("ann", 2.0), np.zeros(5000, np.float32), 0.05 * voice("bob", 1.3)])
    ref = librosa.feature.rms(y=y, frame_length=400, hop_length=160, center=True)[0]
    np.testing.assert_allclose(frame_rms(y, frame_length=400, hop_length=160), ref, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(
        speech_intervals(y, sr=SR, top_db=30, floor_dbfs=None),
        librosa.effects.split(y, top_db=30, frame_length=400, hop_length=160),
    )


@pytest.mark.parametrize("sr_in", [8000, 22050, 44100])
def test_resampling_is_librosas_soxr_hq(voice, sr_in):
    import librosa

    from fewshot.audio.decode import resample

    y = librosa.resample(voice("cat", 1.0), orig_sr=SR, target_sr=sr_in)
    np.testing.assert_array_equal(
        resample(y, orig_sr=sr_in, target_sr=SR), librosa.resample(y, orig_sr=sr_in, target_sr=SR, res_type="soxr_hq")
    )
