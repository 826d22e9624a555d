"""What enrollment checks before it stores anything: names, repeated audio, clipping, length."""

import re
import unicodedata

import numpy as np
import pytest

from fewshot.errors import AudioError, DuplicateAudioError, InvalidNameError
from fewshot.names import normalize_name
from fewshot.store.enrollments import EnrollmentStore
from stores import snapshot
from synth import write_wav


def snapshot_of(path):
    return snapshot(path, ("speakers", "sources"))


def clipped(y: np.ndarray, fraction: float) -> np.ndarray:
    """``y`` amplified until ``fraction`` of its samples hit full scale, and clipped there."""
    return np.clip(y / np.quantile(np.abs(y), 1 - fraction), -1.0, 1.0).astype(np.float32)


@pytest.mark.parametrize(
    "given, stored",
    [
        ("ann", "ann"),
        ("  ann ", "ann"),
        ("ann\n", "ann"),
        ("Zoe\u0308", "Zo\u00eb"),
        ("Anne-Marie O'Neil", "Anne-Marie O'Neil"),
    ],
)
def test_names_are_normalised(given, stored):
    assert normalize_name(given) == stored
    assert unicodedata.is_normalized("NFC", normalize_name(given))


@pytest.mark.parametrize(
    "bad", ["", "   ", "ann\nbob", "ann\x1b[2J", "\x1b]0;pwned\x07", "ann\tbob", "ann\u2028bob", "\u202eann", "ann\x00"]
)
def test_control_characters_and_empty_names_are_refused(bad):
    with pytest.raises(InvalidNameError) as err:
        normalize_name(bad, kind="person")
    message = str(err.value)
    assert message.startswith("the person name ") and message.isprintable()


def test_one_person_whatever_the_spelling(identifier, voice, tmp_path):
    identifier.enroll("home", "ann", [write_wav(tmp_path / "a.wav", voice("ann", 8.0))])
    res = identifier.enroll(" home", "ann ", [write_wav(tmp_path / "b.wav", voice("ann", 8.0, seed=1))])
    assert res.added and res.speaker == "ann"
    identifier.enroll("home", "Zoe\u0308", [write_wav(tmp_path / "z.wav", voice("cat", 8.0))])
    identifier.enroll("home", "Zo\u00eb", [write_wav(tmp_path / "z2.wav", voice("cat", 8.0, seed=1))])
    assert [s.name for s in identifier.store.speakers("home ")] == ["Zo\u00eb", "ann"]
    assert identifier.store.groups()[0]["name"] == "home"


def test_a_bad_name_is_refused_before_anything_happens(identifier, voice, tmp_path):
    wav = write_wav(tmp_path / "a.wav", voice("ann", 8.0))
    with pytest.raises(InvalidNameError, match="U\\+000A"):
        identifier.enroll("home", "ann\nbob", [wav])
    with pytest.raises(InvalidNameError, match="group name"):
        identifier.enroll("\x1b[31mhome", "ann", [tmp_path / "missing.wav"])
    with pytest.raises(InvalidNameError, match="person name"):
        EnrollmentStore(tmp_path / "store.sqlite").enroll("g", " ", np.ones((2, 4)), extractor_id="x", sources=[])
    assert not (tmp_path / "store.sqlite").exists()


def test_enrolling_again_adds_and_says_so(identifier, voice, tmp_path):
    a = write_wav(tmp_path / "a.wav", voice("ann", 16.0))
    b = write_wav(tmp_path / "b.wav", voice("ann", 16.0, seed=1))
    first = identifier.enroll("home", "ann", [a])
    assert not first.added and first.total_seconds == pytest.approx(first.seconds_used)
    second = identifier.enroll("home", "ann", [b])
    assert second.added and second.total_seconds == pytest.approx(first.seconds_used + second.seconds_used)
    assert identifier.store.speakers("home")[0].seconds == pytest.approx(second.total_seconds)


def test_the_same_file_is_not_enrolled_twice(identifier, voice, tmp_path):
    a = write_wav(tmp_path / "a.wav", voice("ann", 16.0))
    b = write_wav(tmp_path / "b.wav", voice("ann", 16.0, seed=1))
    first = identifier.enroll("home", "ann", [a])
    before = snapshot_of(identifier.store.path)
    with pytest.raises(
        DuplicateAudioError, match=r"^a\.wav: already enrolled for 'ann' in group 'home'; use --replace"
    ):
        identifier.enroll("home", "ann", [b, a])
    with pytest.raises(DuplicateAudioError, match=r"^b\.wav: the same audio is given twice"):
        identifier.enroll("home", "bob", [b, b])
    assert snapshot_of(identifier.store.path) == before
    again = identifier.enroll("home", "ann", [a], replace=True)
    assert not again.added and identifier.store.speakers("home")[0].seconds == pytest.approx(first.seconds_used)
    identifier.enroll("home", "cat", [a])  # the same file for another person is that person's business


def test_clipped_enrollment_is_refused_unless_forced(identifier, voice, tmp_path):
    y = voice("bob", 16.0)
    heavy = write_wav(tmp_path / "heavy.wav", clipped(y, 0.42))
    with pytest.raises(AudioError, match=r"heavy\.wav: 4\d% of the samples are clipped .*--force") as err:
        identifier.enroll("home", "bob", [heavy])
    assert "\n" not in str(err.value)
    assert not identifier.store.path.exists()
    res = identifier.enroll("home", "bob", [heavy], force=True)
    assert [w for w in res.warnings if "clipped" in w][0].startswith(f"{heavy}: 4")


def test_some_clipping_warns(identifier, voice, tmp_path):
    mild = write_wav(tmp_path / "mild.wav", clipped(voice("ann", 16.0), 0.02))
    clean = write_wav(tmp_path / "clean.wav", voice("cat", 16.0))
    res = identifier.enroll("home", "ann", [mild])
    assert len(res.warnings) == 1 and re.fullmatch(
        rf"{re.escape(str(mild))}: [23]\.\d% of the samples are clipped \(at full scale\); the voiceprint may not "
        "match this person's clean speech, record at a lower level",
        res.warnings[0],
    )
    assert identifier.enroll("home", "cat", [clean]).warnings == []


def test_under_15_s_of_speech_warns(identifier, voice, tmp_path):
    res = identifier.enroll("home", "ann", [write_wav(tmp_path / "a.wav", voice("ann", 12.0))])
    assert 10.0 < res.seconds_used < 15.0
    assert res.warnings == [f"only {res.seconds_used:.1f} s of speech for 'ann'; 15-35 s gives reliable results"]
    more = identifier.enroll("home", "ann", [write_wav(tmp_path / "b.wav", voice("ann", 8.0, seed=1))])
    assert more.total_seconds > 15.0 and more.warnings == []
