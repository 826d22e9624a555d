"""Long inputs are read, cut and embedded block by block, in flat memory."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fewshot.audio.decode import downmix, load, resample, stream
from fewshot.audio.vad import load_speech, speech_blocks, stream_speech, trim_silence
from fewshot.errors import AudioError
from synth import SR, write_wav


def talk(voice, seconds: float, *, seed: int = 0) -> np.ndarray:
    """A voice with a second of silence every 7 s (pauses the VAD cuts), 16 kHz."""
    y = voice("ann", seconds, seed=seed)
    y[(np.arange(len(y)) % (7 * SR)) >= 6 * SR] = 0.0
    return y


@pytest.fixture
def stereo_22k(voice, tmp_path):
    """3.5 s of a voice, 22.05 kHz stereo (the right channel quieter) as a wav file."""
    y = resample(talk(voice, 3.5), orig_sr=SR, target_sr=22050)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([y, 0.6 * y], axis=1), 22050)
    return path


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "m4a"])
def test_blocks_join_to_the_whole_decoding(stereo_22k, tmp_path, fmt):
    path = stereo_22k
    if fmt != "wav":  # flac and mp3 through libsndfile, m4a through ffmpeg
        path = tmp_path / f"voice.{fmt}"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(stereo_22k), str(path)], check=True)
    blocks = list(stream(path, block_s=0.5))
    assert len(blocks) >= 7
    starts = np.cumsum([0] + [len(y) for _, y in blocks[:-1]]) / SR
    np.testing.assert_allclose([t for t, _ in blocks], starts)
    joined = np.concatenate([y for _, y in blocks])
    assert joined.dtype == np.float32
    np.testing.assert_allclose(joined, load(path), atol=1e-6)
    if fmt in ("wav", "flac"):  # the whole file decoded and resampled at once
        native, rate = sf.read(path, dtype="float32", always_2d=True)
        np.testing.assert_array_equal(joined, resample(downmix(native), orig_sr=rate, target_sr=SR))


def test_array_blocks_resample_like_the_whole(voice):
    y = voice("bob", 5.0)
    y44 = resample(y, orig_sr=SR, target_sr=44100)
    blocks = [b for _, b in stream(y44, sr=SR, sr_in=44100, block_s=1.3)]
    assert len(blocks) == 4
    np.testing.assert_array_equal(np.concatenate(blocks), resample(y44, orig_sr=44100, target_sr=SR))


def test_block_vad_is_the_whole_vad_on_a_short_file(voice):
    y = talk(voice, 20.0)
    for max_silence_s in (0.5, None):
        whole = trim_silence(y, sr=SR, max_silence_s=max_silence_s)
        pieces = list(speech_blocks([y], sr=SR, max_silence_s=max_silence_s))
        np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), whole)
        # blocks of 3 s at the same level: the same speech, and the pieces sit where they are in the file
        pieces = list(
            speech_blocks((y[i : i + 3 * SR] for i in range(0, len(y), 3 * SR)), sr=SR, max_silence_s=max_silence_s)
        )
        np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), whole)
        for start_s, p in pieces:
            np.testing.assert_array_equal(p, y[round(start_s * SR) : round(start_s * SR) + len(p)])


def test_stream_reference_is_the_loudest_frame_so_far(voice):
    quiet, loud = 0.01 * voice("ann", 4.0, seed=1), voice("bob", 4.0, seed=2)
    y = np.concatenate([quiet, np.zeros(2 * SR, np.float32), loud])
    whole = trim_silence(y, sr=SR)
    # the whole file's reference drops the quiet voice (-40 dB)
    assert abs(len(whole) - len(trim_silence(loud, sr=SR))) < 0.05 * SR
    streamed = np.concatenate([p for _, p in speech_blocks([y[: 5 * SR], y[5 * SR :]], sr=SR)])
    # read before the loud voice, the quiet one is speech (as in a file of its own), the floor still holds
    assert abs(len(streamed) - len(whole) - len(trim_silence(quiet, sr=SR))) < 0.05 * SR


def test_stream_speech_is_load_speech_before_normalising(voice, tmp_path):
    path = write_wav(tmp_path / "talk.wav", talk(voice, 9.0))
    streamed = np.concatenate([p.samples for p in stream_speech(path, block_s=2.0)])
    whole = load_speech(path).samples
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed / np.std(streamed), whole / np.std(whole), atol=1e-4)


@pytest.mark.parametrize("case, reason", [("silent", "all silence"), ("short", "too little speech")])
def test_stream_speech_refuses_what_load_speech_refuses(voice, tmp_path, case, reason):
    y = np.zeros(8 * SR, np.float32)
    if case == "short":
        y[5 * SR : 5 * SR + SR // 2] = voice("ann", 0.5)
    path = write_wav(tmp_path / f"{case}.wav", y)
    with pytest.raises(AudioError, match=reason) as info:
        list(stream_speech(path, block_s=2.0))
    assert str(path) in str(info.value)
    with pytest.raises(AudioError, match=reason):
        load_speech(path)


def test_a_fault_ends_the_stream_and_names_the_file(tmp_path):
    path = tmp_path / "corrupt.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(range(256)) * 40)
    with pytest.raises(AudioError, match="unreadable or corrupt") as info:
        list(stream(path))
    assert str(path) in str(info.value)


@pytest.fixture(scope="module")
def family(default_extractor, tmp_path_factory):
    from fewshot.identifier import SpeakerIdentifier
    from synth import VOICES, synth_voice

    sid = SpeakerIdentifier(default_extractor, store=tmp_path_factory.mktemp("stream") / "s.sqlite")
    for seed, name in enumerate(VOICES):
        sid.enroll("family", name, [synth_voice(**VOICES[name], seconds=20.0, seed=10 + seed)])
    return sid


def test_identify_streams_a_long_file_to_the_short_files_answer(family, voice, tmp_path):
    from fewshot.audio.decode import BLOCK_S
    from fewshot.model.streaming import Blocks, read_head

    short = write_wav(tmp_path / "short.wav", talk(voice, 12.0, seed=3))
    long = write_wav(tmp_path / "long.wav", talk(voice, BLOCK_S + 15.0, seed=3))
    cfg = family.extractor.feature_config
    assert isinstance(read_head(short, config=cfg), np.ndarray) and isinstance(read_head(long, config=cfg), Blocks)
    p_short, p_long = family.identify("family", short), family.identify("family", long)
    assert p_short.label == p_long.label == "ann"
    whole = family._predictions(family.classifier("family"), [load_speech(long).samples])[0]
    assert whole.label == "ann" and abs(p_long.score - whole.score) < 0.02
    many = family.identify_many("family", [long, short, tmp_path / "missing.wav"])
    assert [p.label for p in many[:2]] == ["ann", "ann"] and isinstance(many[2], AudioError)
    assert abs(many[0].score - p_long.score) < 1e-6 and abs(many[1].score - p_short.score) < 1e-6


def test_cli_shows_progress_on_long_files_and_enrollments(default_extractor, voice, tmp_path, capsys):
    from fewshot.audio.decode import BLOCK_S
    from fewshot.cli import main

    store = str(tmp_path / "s.sqlite")
    long = write_wav(tmp_path / "long.wav", talk(voice, BLOCK_S + 5.0, seed=4))
    assert main(["enroll", "--store", store, "--group", "g", "--speaker", "ann", str(long), "--progress"]) == 0
    assert "Enrolling ann" in capsys.readouterr().err
    assert main(["identify", "--store", store, "--group", "g", str(long), "--progress"]) == 0
    out = capsys.readouterr()
    assert "long.wav: ann" in out.out and f"/{BLOCK_S + 5:.0f} s" in out.err


MEASURE = """
import sys
import numpy as np
from fewshot.audio.vad import stream_speech


def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


for _ in stream_speech(sys.argv[1]):
    pass
before = peak_mb()
n = sum(len(p.samples) for p in stream_speech(sys.argv[2]))
print(before, peak_mb(), n / 16000)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from /proc")
def test_streaming_memory_stays_flat(voice, tmp_path):
    """Ten minutes of 22.05 kHz stereo take no more memory than 70 s (a whole decoding would add over 100 MB)."""
    ten_s = resample(talk(voice, 10.0, seed=5), orig_sr=SR, target_sr=22050)
    paths = []
    for name, repeats in (("short", 7), ("long", 60)):
        path = tmp_path / f"{name}.wav"
        with sf.SoundFile(path, "w", samplerate=22050, channels=2, subtype="PCM_16") as f:
            for k in range(repeats):
                gain = 0.5 + 0.5 * (k % 3) / 2
                f.write(np.stack([gain * ten_s, 0.8 * gain * ten_s], axis=1))
        paths.append(str(path))
    proc = subprocess.run([sys.executable, "-c", MEASURE, *paths], capture_output=True, text=True, check=True)
    before, after, speech_s = map(float, proc.stdout.split())
    assert speech_s > 450
    assert after - before < 30, f"peak memory grew from {before:.0f} MB to {after:.0f} MB"


def test_parallel_decoding_gives_standard_error_back(voice, tmp_path):
    """libsndfile's noise is silenced per read; reads overlapping in threads leave standard error as it was."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [write_wav(tmp_path / f"{i}.wav", voice("cat", 1.0, seed=i)) for i in range(4)]
    before = os.fstat(2)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(load, paths * 10))
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
