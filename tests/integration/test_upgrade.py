"""A new model must not lock people out: `groups upgrade` re-embeds kept audio; a former id is moved on."""

import subprocess
import sys

import numpy as np
import pytest

from fewshot.config import ExtractorConfig, FeatureConfig
from fewshot.errors import IncompatibleModelError
from fewshot.identifier import SpeakerIdentifier
from fewshot.model.extractor import Extractor, load_extractor
from fewshot.model.nn import build_cnn
from synth import VOICES, synth_voice, write_wav


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("models")
    out = []
    for k in range(2):
        keras.utils.set_random_seed(10 + k)
        ec = ExtractorConfig(channels=(4, 8), blocks=(1, 1), embedding_dim=16)
        out.append(
            Extractor(build_cnn(ec, n_mels=64), feature_config=FeatureConfig(), extractor_config=ec).save(
                root / f"m{k}"
            )
        )
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    return {n: write_wav(d / f"{n}.wav", synth_voice(**VOICES[n], seconds=16.0, seed=3)) for n in ("ann", "bob")}


class Result:
    def __init__(self, returncode, out):
        self.returncode, self.stdout, self.stderr = returncode, out.out, out.err


@pytest.fixture
def fewshot(capsys):
    """The ``fewshot`` command, run in this process (the same code path as the installed script)."""
    from fewshot.cli import main

    def run(*args, store):
        capsys.readouterr()
        code = main([*map(str, args), "--store", str(store)])
        return Result(code, capsys.readouterr())

    return run


def test_upgrade_from_kept_audio_gives_the_new_models_enrollment(two_models, files, tmp_path, fewshot):
    old, new = two_models
    store = tmp_path / "s.sqlite"
    for name, f in files.items():
        assert (
            fewshot(
                "enroll", "--group", "home", "--speaker", name, f, "--keep-audio", "--model", old, store=store
            ).returncode
            == 0
        )
    r = fewshot("identify", "--group", "home", files["ann"], "--model", new, store=store)
    assert r.returncode == 2 and "fewshot groups upgrade home" in r.stderr, r.stderr
    r = fewshot("groups", "upgrade", "--model", new, store=store)
    assert r.returncode == 0 and "upgraded group 'home'" in r.stdout and "2 people" in r.stdout, r.stderr
    r = fewshot("identify", "--group", "home", files["ann"], "--model", new, store=store)
    assert r.returncode == 0, r.stderr

    fresh = SpeakerIdentifier(load_extractor(new), store=tmp_path / "fresh.sqlite")
    for name, f in files.items():
        fresh.enroll("home", name, [f])
    upgraded = SpeakerIdentifier(load_extractor(new), store=store)
    a = upgraded.store.embeddings("home", extractor_id=upgraded.extractor.model_id)
    b = fresh.store.embeddings("home", extractor_id=fresh.extractor.model_id)
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    assert list(a[1]) == list(b[1])


def test_without_kept_audio_the_message_says_to_re_enroll(two_models, files, tmp_path, fewshot):
    old, new = two_models
    store = tmp_path / "s.sqlite"
    assert (
        fewshot("enroll", "--group", "home", "--speaker", "ann", files["ann"], "--model", old, store=store).returncode
        == 0
    )
    r = fewshot("groups", "upgrade", "home", "--model", new, store=store)
    assert r.returncode == 2 and "not kept" in r.stderr and "re-enroll" in r.stderr, r.stderr
    r = fewshot("identify", "--group", "home", files["ann"], "--model", new, store=store)
    assert r.returncode == 2 and "re-enroll" in r.stderr
    assert fewshot("groups", "show", "home", store=store).returncode == 0  # left as it was


def test_a_group_under_the_models_former_id_moves_to_the_current_one(two_models, files, tmp_path):
    ex = load_extractor(two_models[0])
    sid = SpeakerIdentifier(ex, store=tmp_path / "s.sqlite")
    E = ex.embed([synth_voice(**VOICES["ann"], seconds=10.0)], return_segments=True)[0]
    sid.store.enroll("home", "ann", E, extractor_id=ex.meta["sha256"][:16], sources=[])  # as enrolled before
    sid.store.enroll("home", "bob", E[::-1] * -1, extractor_id=ex.meta["sha256"][:16], sources=[])
    sid.classifier("home")
    assert sid.store.group_revision("home")[0] == ex.model_id
    other = load_extractor(two_models[1])
    with pytest.raises(IncompatibleModelError, match="re-enroll"):
        SpeakerIdentifier(other, store=tmp_path / "s.sqlite").classifier("home")


def test_small_command_line_manners(files, tmp_path, two_models, fewshot):
    store = tmp_path / "s.sqlite"
    assert (
        fewshot(
            "enroll", "--group", "g", "--speaker", "ann", files["ann"], "-v", "--model", two_models[0], store=store
        ).returncode
        == 0
    )
    assert "g: 1 person (ann)" in fewshot("groups", store=store).stdout
    (tmp_path / "pics").mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "fewshot.cli", "spectrogram", str(files["ann"]), "-o", str(tmp_path / "pics")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and (tmp_path / "pics" / "ann.png").is_file()
    assert r.stdout.strip() == f"wrote {tmp_path / 'pics' / 'ann.png'}"
    r = subprocess.run(
        [sys.executable, "-m", "fewshot.cli", "groups", "-v", "--store", str(store)], capture_output=True, text=True
    )
    assert r.returncode == 0 and "1 person" in r.stdout  # -v after the subcommand, from the real entry point


def test_speech_enrolled_while_an_upgrade_runs_is_not_lost(two_models, files, tmp_path):
    """The upgrade reads the group, re-embeds it (slow), then writes: an enrollment in between must survive."""
    old, new = two_models
    store = tmp_path / "s.sqlite"
    sid_old = SpeakerIdentifier(load_extractor(old), store=store)
    for name, f in files.items():
        sid_old.enroll("home", name, [f], keep_audio=True)
    upgrader = SpeakerIdentifier(load_extractor(new), store=store)
    more = write_wav(tmp_path / "more.wav", synth_voice(**VOICES["ann"], seconds=10.0, seed=8))
    enrolled = []

    def meanwhile(members):  # another process adds to ann after her speech was read, before bob's
        for i, m in enumerate(members):
            if i == 1 and not enrolled:
                enrolled.append(sid_old.enroll("home", "ann", [more], keep_audio=True))
            yield m

    r = upgrader.upgrade("home", progress=meanwhile)
    assert r["to"] == upgrader.extractor.model_id
    ann = next(m for m in upgrader.store.speakers("home") if m.name == "ann")
    assert "more.wav" in ann.sources
    X, y = upgrader.store.embeddings("home", extractor_id=upgrader.extractor.model_id)
    seconds = sum(len(a) for a in upgrader.store.kept_audio("home", "ann")) / 16000
    assert np.sum(y == "ann") == len(
        upgrader.extractor.embed([np.concatenate(upgrader.store.kept_audio("home", "ann"))], return_segments=True)[0]
    )
    assert seconds > 20  # both enrollments' speech re-embedded


def test_an_upgrade_that_keeps_meeting_changes_refuses_and_changes_nothing(two_models, files, tmp_path):
    from fewshot.errors import StoreBusyError

    old, new = two_models
    store = tmp_path / "s.sqlite"
    sid_old = SpeakerIdentifier(load_extractor(old), store=store)
    sid_old.enroll("home", "ann", [files["ann"]], keep_audio=True)
    extra = iter(
        write_wav(tmp_path / f"more{k}.wav", synth_voice(**VOICES["ann"], seconds=6.0, seed=20 + k)) for k in range(10)
    )

    def always(members):
        sid_old.enroll("home", "ann", [next(extra)], keep_audio=True)
        yield from members

    upgrader = SpeakerIdentifier(load_extractor(new), store=store)
    with pytest.raises(StoreBusyError, match="changed while it was being upgraded"):
        upgrader.upgrade("home", progress=always)
    assert upgrader.store.group_revision("home")[0] == sid_old.extractor.model_id


def test_groups_upgrade_works_without_tqdm(two_models, files, tmp_path, fewshot, monkeypatch):
    old, new = two_models
    store = tmp_path / "s.sqlite"
    assert (
        fewshot(
            "enroll", "--group", "home", "--speaker", "ann", files["ann"], "--keep-audio", "--model", old, store=store
        ).returncode
        == 0
    )
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as after `pip install .`, without the extras
    r = fewshot("groups", "upgrade", "home", "--model", new, store=store)
    assert r.returncode == 0 and "upgraded group 'home'" in r.stdout, r.stderr
