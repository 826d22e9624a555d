"""Decoding, silence removal, segmentation and narrator folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from data_tools.process import NarratorJob, ProcessSettings, load_done, process_narrator
from data_tools.segment import fixed_segments, join_and_trim, write_wav
from fewshot.audio.decode import SAMPLE_RATE, load

SR = SAMPLE_RATE


@pytest.fixture(scope="module")
def mp3s(site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mp3")
    paths = []
    for name in ("fixture_book_1000_01_64kb.mp3", "fixture_book_1000_02_64kb.mp3"):
        path = folder / name
        path.write_bytes(site.blobs[("fixture_book_1000", name)])
        paths.append(path)
    return paths


def test_decode_and_wav_format(mp3s, tmp_path):
    samples = load(mp3s[0])
    assert samples.dtype == np.float32 and abs(len(samples) / SR - 3.0) < 0.1
    assert np.abs(samples).max() > 0.1
    write_wav(tmp_path / "a.wav", load(mp3s[0], max_seconds=2.0))
    info = sf.info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    assert info.frames == 2 * SR
    assert list(tmp_path.iterdir()) == [tmp_path / "a.wav"]


def test_join_and_trim(mp3s):
    both = join_and_trim(mp3s, None)
    assert len(both) == len(load(mp3s[0])) + len(load(mp3s[1]))
    assert len(join_and_trim(mp3s, 4.0)) == 4 * SR
    assert len(join_and_trim(mp3s, 1.0)) == SR


def test_fixed_segments():
    segs = fixed_segments(np.arange(int(2.5 * SR)), SR, 1.0)
    assert [len(s) for s in segs] == [SR, SR]
    assert segs[1][0] == SR
    with pytest.raises(ValueError):
        fixed_segments(np.arange(10), SR, 0)


def test_process_narrator_builds_folder_atomically(mp3s, tmp_path):
    settings = ProcessSettings(max_seconds=5.0, segment_seconds=1.0, spectrograms=True)
    job = NarratorJob("100", [("1000", [mp3s[0]]), ("1009", [mp3s[1]])], tmp_path, settings)
    result = process_narrator(job)
    folder = tmp_path / "100"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["100"]
    assert result.input_seconds == pytest.approx(5.0, abs=0.01)
    assert 0 < result.speech_seconds < result.input_seconds
    names = [s["file"] for s in result.segments]
    assert names[0] == "100-1000-0000.wav" and any(n.startswith("100-1009-0000") for n in names)
    assert result.speech_seconds - 2 < len(names) <= result.speech_seconds
    for name in names:
        assert sf.info(folder / name).frames == SR
        assert (folder / name.replace(".wav", ".png")).read_bytes()[:4] == b"\x89PNG"
    assert load_done(tmp_path, "100", settings)["segments"] == result.segments
    assert load_done(tmp_path, "100", ProcessSettings(max_seconds=5.0)) is None

    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".wav"}
    again = process_narrator(job)
    assert again.segments == result.segments
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".wav"} == before
    assert json.loads((folder / "segments.json").read_text())["reader_id"] == "100"
