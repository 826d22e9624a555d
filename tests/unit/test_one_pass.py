"""One pass through the speech: each input decoded once, and one window door to the network."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import numpy as np
import pytest

from synth import SR, VOICES, conversation, synth_voice, write_wav


@pytest.fixture
def decodes(monkeypatch):
    """How many times a file has been opened for decoding (``fewshot.audio.decode``'s one decoder of files)."""
    from fewshot.audio import decode

    opened = []
    real = decode._file_blocks

    def counting(path, **kwargs):
        opened.append(path.name)
        return real(path, **kwargs)

    monkeypatch.setattr(decode, "_file_blocks", counting)
    return opened


def test_enroll_decodes_each_file_once_and_stores_its_checksum(identifier, tmp_path, decodes):
    from fewshot.persistence import sha256_of

    ann = write_wav(tmp_path / "ann.wav", synth_voice(**VOICES["ann"], seconds=12.0, seed=1))
    bob = write_wav(tmp_path / "bob.wav", synth_voice(**VOICES["bob"], seconds=12.0, seed=2))
    identifier.enroll("g", "ann", [ann])
    identifier.enroll("g", "bob", [bob])
    assert decodes == ["ann.wav", "bob.wav"]
    import sqlite3

    with sqlite3.connect(identifier.store.path) as db:
        kept = {h for (h,) in db.execute("SELECT sha256 FROM sources")}
    assert kept == {sha256_of(ann), sha256_of(bob)}  # the checksums taken while decoding are the files'


@pytest.mark.parametrize("seconds", [40.0, 75.0])
def test_identify_segments_decodes_once_per_pass(identifier, tmp_path, decodes, seconds):
    from fewshot.audio.decode import BLOCK_S

    for seed, name in enumerate(("ann", "bob")):
        identifier.enroll("g", name, [synth_voice(**VOICES[name], seconds=15.0, seed=10 + seed)])
    y, _ = conversation([("ann", seconds / 2, 0.5), ("bob", seconds / 2, 0.5)])
    path = write_wav(tmp_path / "talk.wav", y)
    p = identifier.identify("g", path, segments=True)
    assert p.segments and {t.speaker for t in p.segments} <= {"ann", "bob", "unknown"}
    # one block: decoded once; longer: the identification and the timeline share one decoding, and the
    # speech is read once more to embed its windows (before: 3 passes and the first 2 minutes a 4th time)
    assert len(decodes) == (1 if seconds <= BLOCK_S else 2)
    decodes.clear()
    many = identifier.identify_many("g", [path], segments=True)[0]
    assert len(decodes) == (1 if seconds <= BLOCK_S else 2)
    assert many.label == p.label and abs(many.score - p.score) < 1e-6 and many.segments == p.segments
    decodes.clear()
    assert identifier.identify("g", path).label == p.label and len(decodes) == 1


def test_the_checksum_taken_while_decoding_is_the_files(tmp_path):
    import soundfile as sf

    from fewshot.audio.decode import stream
    from fewshot.persistence import sha256_of

    y = synth_voice(**VOICES["ann"], seconds=6.0, seed=3)
    files = [write_wav(tmp_path / "a.wav", y)]
    sf.write(tmp_path / "a.flac", np.stack([y, 0.5 * y], axis=1), SR)
    files.append(tmp_path / "a.flac")
    if shutil.which("ffmpeg"):
        for ext in ("mp3", "m4a"):  # mp3: libsndfile; m4a: ffmpeg
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y", "-i", str(files[0]), str(tmp_path / f"a.{ext}")], check=True
            )
            files.append(tmp_path / f"a.{ext}")
    for f in files:
        whole, part = hashlib.sha256(), hashlib.sha256()
        for _ in stream(f, sha256=whole):
            pass
        blocks = stream(f, sha256=part, block_s=1.0)
        next(blocks)
        blocks.close()  # read in part: the rest is hashed, not decoded
        assert whole.hexdigest() == part.hexdigest() == sha256_of(f), f.name
        np.testing.assert_array_equal(
            np.concatenate([b for _, b in stream(f, sha256=hashlib.sha256())]),
            np.concatenate([b for _, b in stream(f)]),
        )


def test_speech_maps_back_to_file_time(tmp_path):
    from fewshot.audio.vad import load_speech, stream_speech

    y = np.concatenate(
        [
            np.zeros(2 * SR),
            synth_voice(**VOICES["ann"], seconds=3.0, seed=4),
            np.zeros(2 * SR),
            synth_voice(**VOICES["ann"], seconds=3.0, seed=5),
        ]
    ).astype(np.float32)
    speech = load_speech(write_wav(tmp_path / "gaps.wav", y))
    assert speech.joins[-1] == len(speech.samples) and len(speech.intervals) >= 2
    assert abs(speech.file_s(0) - 2.0) < 0.1 and abs(speech.file_s(len(speech.samples) - 1) - 10.0) < 0.1
    middle = speech.joins[1]  # the first sample after the long pause
    assert speech.file_s(middle) - speech.file_s(middle - 1) > 1.5
    pieces = list(stream_speech(tmp_path / "gaps.wav", block_s=2.0))
    assert sum(len(p.samples) for p in pieces) == len(speech.samples)
    assert abs(pieces[0].file_s(0) - speech.file_s(0)) < 0.05


def test_a_nan_from_the_network_is_refused_on_the_live_path(tiny_model_dir, monkeypatch):
    from fewshot.errors import CorruptModelError
    from fewshot.live.turns import TurnStream
    from fewshot.model.extractor import load_extractor

    ex = load_extractor(tiny_model_dir)
    monkeypatch.setattr(ex.backend, "run", lambda X: np.full((len(X), ex.dim), np.nan, np.float32))
    stream = TurnStream(None, ex)
    noise = np.random.default_rng(0).normal(0, 0.05, SR).astype(np.float32)
    for piece in (noise[: stream.win], noise[: stream.hop]):
        with pytest.raises(CorruptModelError, match="NaN"):
            stream._embed([piece])


def test_every_window_path_gives_what_it_gave_before(default_extractor):
    """The window door reproduces each path's own former computation on the shipped model."""
    from fewshot.audio.features import l2_normalize, log_mel, segment
    from fewshot.audio.vad import normalize_loudness
    from fewshot.groups.selfcheck import HOP_S, WINDOW_S, windows
    from fewshot.live.turns import TurnStream
    from fewshot.model.extractor import window_starts
    from fewshot.turns.timeline import embed_windows

    ex, cfg = default_extractor, default_extractor.feature_config
    y = normalize_loudness(synth_voice(**VOICES["ann"], seconds=7.3, seed=6), target_dbfs=cfg.target_dbfs)

    def run(X):
        return l2_normalize(np.concatenate([ex.backend.run(X[i : i + 64]) for i in range(0, len(X), 64)]))

    S = log_mel(y, config=cfg)
    segments = run(segment(S, seg_frames=cfg.segment_frames, hop_frames=cfg.segment_hop_frames))
    np.testing.assert_allclose(ex.embed([y], return_segments=True)[0], segments, atol=1e-5)
    starts = window_starts(len(S), window=100, hop=50)
    turn = run(np.stack([S[a : a + 100] for a in starts]))
    np.testing.assert_allclose(embed_windows(ex, y, window_s=1.0, hop_s=0.5)[0], turn, atol=1e-5)
    w, h = int(WINDOW_S * SR), int(HOP_S * SR)
    check = ex.embed([y[a : a + w] for a in range(0, len(y) - w + 1, h)])  # each window a whole utterance
    np.testing.assert_allclose(windows(ex, y), check, atol=1e-5)
    stream = TurnStream(None, ex)
    pieces = [y[a : a + stream.win] for a in range(0, len(y) - stream.win + 1, stream.hop)]
    live = l2_normalize(
        ex.backend.run(
            log_mel(np.stack([normalize_loudness(p, target_dbfs=cfg.target_dbfs) for p in pieces]), config=cfg)[:, :100]
        )
    )
    np.testing.assert_allclose(stream._embed(pieces), live, atol=1e-5)
    short = normalize_loudness(y[: stream.hop], target_dbfs=cfg.target_dbfs)
    np.testing.assert_allclose(stream._embed([y[: stream.hop]]), ex.embed([short]), atol=1e-5)
