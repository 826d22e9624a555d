"""Manifest contract and speaker-disjoint splits."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from data_tools.splits import apply_splits, assign_splits, read_speaker_list
from data_tools.splits import main as splits_main
from fewshot import datasets as mf
from fewshot.datasets import ManifestError, ManifestRow, read_manifest, validate_manifest, write_manifest


def rows_for(root: Path, speakers, per=2, split="train"):
    return [
        ManifestRow(root / "audio" / s / f"{s}-1-{i:04d}.wav", s, "1", 5.0, split) for s in speakers for i in range(per)
    ]


def touch_all(rows):
    for row in rows:
        row.path.parent.mkdir(parents=True, exist_ok=True)
        row.path.write_bytes(b"RIFF")


def test_round_trip_relative_paths(tmp_path):
    rows = rows_for(tmp_path, ["7", "8"])
    write_manifest(tmp_path / "manifest.csv", rows)
    text = (tmp_path / "manifest.csv").read_text()
    assert text.splitlines()[:2] == ["path,speaker_id,book_id,duration_s,split", "audio/7/7-1-0000.wav,7,1,5.000,train"]
    back = read_manifest(tmp_path / "manifest.csv")
    assert back == rows and all(r.path.is_absolute() for r in back)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.csv"]
    assert list(inspect.signature(mf.read_manifest).parameters) == ["path"]


def test_row_fields_for_training():
    import dataclasses

    fields = {f.name: f.type for f in dataclasses.fields(ManifestRow)}
    assert list(fields) == ["path", "speaker_id", "book_id", "duration_s", "split"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("path,speaker,book_id,duration_s,split\n", "columns"),
        ("path,speaker_id,book_id,duration_s,split\n/abs.wav,1,1,5,train\n", "relative"),
        ("path,speaker_id,book_id,duration_s,split\na.wav,1,1,x,train\n", "number"),
        ("path,speaker_id,book_id,duration_s,split\na.wav,1,1,0,train\n", "positive"),
        ("path,speaker_id,book_id,duration_s,split\na.wav,1,1,5,dev\n", "split"),
        ("path,speaker_id,book_id,duration_s,split\na.wav,1,1,5,train\nb.wav,1,1,5,test\n", "both"),
        ("path,speaker_id,book_id,duration_s,split\na.wav,1,1,5,train\na.wav,1,1,5,train\n", "duplicate"),
        ("path,speaker_id,book_id,duration_s,split\na.wav,,1,5,train\n", "empty speaker"),
    ],
)
def test_invalid_manifests_rejected(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "m.csv")


def test_validate_checks_files(tmp_path):
    rows = rows_for(tmp_path, ["7"])
    write_manifest(tmp_path / "manifest.csv", rows)
    with pytest.raises(ManifestError, match="missing"):
        validate_manifest(tmp_path / "manifest.csv")
    touch_all(rows)
    assert validate_manifest(tmp_path / "manifest.csv") == rows


def test_splits_disjoint_deterministic_and_stable():
    speakers = [str(i) for i in range(100)]
    a = assign_splits(speakers, seed=3)
    assert a == assign_splits(reversed(speakers), seed=3)
    counts = {s: list(a.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 80, "val": 10, "test": 10}
    assert assign_splits(speakers, seed=4) != a
    b = assign_splits(speakers + ["100"], seed=3)
    assert sum(a[s] != b[s] for s in speakers) <= 2
    assert set(assign_splits(["1", "2", "3"]).values()) == {"train", "val", "test"}
    assert list(assign_splits(["1"]).values()) == ["train"]
    assert assign_splits([]) == {}
    with pytest.raises(ValueError):
        assign_splits(speakers, val_fraction=0.5, test_fraction=0.5)


def test_apply_splits_with_exclusions(tmp_path):
    (tmp_path / "ex.txt").write_text("# held out\n8\n\n 9 \n")
    exclude = read_speaker_list(tmp_path / "ex.txt")
    assert exclude == {"8", "9"}
    rows = apply_splits(rows_for(tmp_path, [str(i) for i in range(10)]), exclude=exclude)
    assert {r.speaker_id for r in rows} == {str(i) for i in range(10)} - exclude
    split_of = {}
    for row in rows:
        assert split_of.setdefault(row.speaker_id, row.split) == row.split


def test_splits_command_rewrites_manifest(tmp_path, capsys):
    rows = rows_for(tmp_path, [str(i) for i in range(10)])
    write_manifest(tmp_path / "manifest.csv", rows)
    (tmp_path / "ex.txt").write_text("3\n")
    assert (
        splits_main([str(tmp_path / "manifest.csv"), "--seed", "1", "--exclude-speakers", str(tmp_path / "ex.txt")])
        == 0
    )
    back = read_manifest(tmp_path / "manifest.csv")
    assert "3" not in {r.speaker_id for r in back}
    assert {r.split for r in back} == {"train", "val", "test"}
    assert "18 segments" in capsys.readouterr().out
