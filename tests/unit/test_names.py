"""Names that look alike are one name; names that hide characters, mix scripts or run on are refused."""

import numpy as np
import pytest

from fewshot.errors import InvalidNameError
from fewshot.names import MAX_NAME_CHARS, name_key, normalize_name
from fewshot.store.enrollments import EnrollmentStore


@pytest.mark.parametrize(
    "bad",
    [
        "unknown\u200b",
        "\ufeffann",
        "ann\u200f",
        "a\u200en",
        "an\u2066n",
        "an\u00adn",
        "x" * (MAX_NAME_CHARS + 1),
        "\u0430nn",
        "b\u03bfb",
        "ann\ue000",
    ],
)
def test_invisible_bidi_private_mixed_script_and_overlong_names_are_refused(bad):
    with pytest.raises(InvalidNameError) as err:
        normalize_name(bad, kind="person")
    assert str(err.value).isprintable() and "\u200b" not in str(err.value)


@pytest.mark.parametrize(
    "name",
    [
        "Zo\u00eb",
        "Jean-Luc O'Neil",
        "\u0410\u043d\u043d\u0430",
        "\u5f20\u4f1f",
        "\u0622\u0646\u0627",
        "x" * MAX_NAME_CHARS,
        "Ann 2",
    ],
)
def test_real_names_are_kept(name):
    assert normalize_name(name) == name


def test_look_alike_spellings_share_one_key():
    assert len({name_key(n) for n in ("Ann", "ann", "ANN", "\uff41\uff4e\uff4e", "ann ", "a\u0301nn"[:0] + "ann")}) == 1
    assert name_key("Stra\u00dfe") == name_key("STRASSE")
    assert name_key("ann") != name_key("anne")


def test_the_store_treats_look_alike_names_as_one_person_and_one_group(tmp_path):
    with EnrollmentStore(tmp_path / "s.sqlite") as store:
        store.enroll("Home", "Ann", np.ones((2, 4)), extractor_id="x", sources=[])
        added, _ = store.enroll("home", "ann", np.ones((3, 4)), extractor_id="x", sources=[])
        store.enroll("\uff48\uff4f\uff4d\uff45", "\uff21\uff4e\uff4e", np.ones((1, 4)), extractor_id="x", sources=[])
        assert added
        assert [g["name"] for g in store.groups()] == ["Home"]  # the first spelling is kept
        assert [(s.name, s.n_segments) for s in store.speakers("HOME")] == [("Ann", 6)]
        store.remove_speaker("home", "ANN")
        assert store.speakers("Home") == []
