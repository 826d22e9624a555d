"""fewshot identify's text output and RTTM show file names as they are, and keep files apart."""

import gc

import pytest

from synth import write_wav


@pytest.fixture
def fewshot(capsys, tiny_model_dir, tmp_path):
    from fewshot.cli import main

    def run(*args):
        capsys.readouterr()
        code = main([*map(str, args), "--store", str(tmp_path / "s.sqlite"), "--model", str(tiny_model_dir)])
        gc.collect()
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_same_named_files_keep_their_turns_apart_and_odd_names_print_escaped(fewshot, voice, tmp_path):
    for i, name in enumerate(("ann", "bob")):
        assert (
            fewshot(
                "enroll",
                "--group",
                "g",
                "--speaker",
                name,
                write_wav(tmp_path / f"{name}.wav", voice(name, 8.0, seed=i)),
            )[0]
            == 0
        )
    (tmp_path / "d2").mkdir()
    a1 = write_wav(tmp_path / "a.wav", voice("ann", 4.0, seed=3))
    a2 = write_wav(tmp_path / "d2" / "a.wav", voice("bob", 4.0, seed=4))
    odd = write_wav(tmp_path / "x\nfake: ann (score 0.999)\u202evaw.wav", voice("bob", 4.0, seed=5))
    rttm = tmp_path / "out.rttm"
    code, out, err = fewshot("identify", "--group", "g", "--segments", "--rttm", rttm, a1, a2, odd)
    assert code == 0, err
    assert len([ln for ln in out.splitlines() if not ln.startswith(" ")]) == 3  # one line per file
    assert "\u202e" not in out and "fake: ann (score 0.999)" in out and "x\\u000afake" in out
    ids = {line.split()[1] for line in rttm.read_text().splitlines()}
    assert len(ids) == 3 and all(line.isprintable() for line in rttm.read_text().splitlines())
