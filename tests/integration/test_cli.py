"""End to end through the real ``fewshot`` command, on espeak-ng voices and the shipped model."""

import contextlib
import io
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from synth import SR, espeak, write_wav

TEXT = ("The north wind and the sun were disputing which was the stronger, when a traveller came along "
        "wrapped in a warm cloak. They agreed that the one who first succeeded in making the traveller "
        "take his cloak off should be considered stronger than the other. ")
TEST_TEXT = "Yesterday I walked to the market to buy apples, bread and a little cheese for breakfast."
PEOPLE = {"amy": ("en-us+f3", 70), "bert": ("en-gb+m1", 35), "carl": ("en+m7", 50)}


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def fewshot(*args, home, check=True, subprocess_run=False):
    """Run the ``fewshot`` command: in this process (fast), or as a new process."""
    args = [str(a) for a in args]
    if subprocess_run:
        env = {**os.environ, "FEWSHOT_HOME": str(home)}
        proc = subprocess.run([sys.executable, "-m", "fewshot.cli", *args], env=env,
                              capture_output=True, text=True, timeout=300)
        res = Result(proc.returncode, proc.stdout, proc.stderr)
    else:
        from fewshot.cli import main

        out, err = io.StringIO(), io.StringIO()
        old = os.environ.get("FEWSHOT_HOME")
        os.environ["FEWSHOT_HOME"] = str(home)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(args)
                except SystemExit as exc:  # argparse --help and usage errors
                    rc = exc.code
        finally:
            if old is None:
                os.environ.pop("FEWSHOT_HOME")
            else:
                os.environ["FEWSHOT_HOME"] = old
        res = Result(rc, out.getvalue(), err.getvalue())
    if check and res.returncode != 0:
        raise AssertionError(f"fewshot {' '.join(args)} failed:\n{res.stderr}")
    return res


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    d = tmp_path_factory.mktemp("voices")
    out = {}
    for name, (v, pitch) in PEOPLE.items():
        enroll = espeak(d / f"{name}.wav", TEXT * 2, voice=v, pitch=pitch)
        test = espeak(d / f"{name}-test.wav", TEST_TEXT, voice=v, pitch=pitch, speed=165)
        out[name] = (enroll, test)
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory, voices, default_extractor):
    home = tmp_path_factory.mktemp("home")
    for name, (enroll, _) in voices.items():
        proc = fewshot("enroll", "--group", "family", "--speaker", name, enroll, home=home)
        assert "s of speech used" in proc.stdout
    return home


def test_enroll_then_identify(home, voices):
    """Through the real command in a new process, as a user runs it."""
    tests = [voices[n][1] for n in PEOPLE]
    proc = fewshot("identify", "--group", "family", *tests, home=home, subprocess_run=True)
    lines = proc.stdout.strip().splitlines()
    assert [ln.split(": ")[1].split(" ")[0] for ln in lines] == list(PEOPLE)


def test_identify_json(home, voices):
    proc = fewshot("identify", "--group", "family", "--json", "--segments", voices["bert"][1], home=home)
    obj = json.loads(proc.stdout)
    assert set(obj) == {"file", "speaker", "score", "segments"}
    assert obj["speaker"] == "bert" and -1 <= obj["score"] <= 1
    assert obj["segments"] and set(obj["segments"][0]) == {"start", "end", "speaker", "score"}
    plain = json.loads(fewshot("identify", "--group", "family", "--json", voices["bert"][1], home=home).stdout)
    assert set(plain) == {"file", "speaker", "score"}  # no per-segment pass without --segments
    assert plain["score"] == pytest.approx(obj["score"], abs=2e-4)


def test_identify_many_files_in_one_call_keeps_order_and_reports_bad_ones(home, voices, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    files = [voices["carl"][1], empty, voices["amy"][1], voices["bert"][1], voices["amy"][1]]
    proc = fewshot("identify", "--group", "family", "--json", *files, home=home, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {empty}: file is empty (0 bytes)"
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["speaker"] for o in objs] == ["carl", "amy", "bert", "amy"]
    alone = json.loads(fewshot("identify", "--group", "family", "--json", voices["amy"][1], home=home).stdout)
    assert objs[1]["score"] == pytest.approx(alone["score"], abs=2e-4)  # embedded in a batch: the same answer
    assert objs[3]["score"] == pytest.approx(alone["score"], abs=2e-4)


def test_stranger_is_unknown(home, tmp_path):
    # voices from other synthesisers than the enrolled espeak-ng formant voices: espeak-ng's Klatt
    # engine with a high voice, and the glottal-pulse voice of tests/synth.py
    from synth import VOICES, synth_voice

    strangers = [espeak(tmp_path / "klatt.wav", TEST_TEXT * 2, voice="en+klatt", pitch=90),
                 write_wav(tmp_path / "pulse.wav", synth_voice(**VOICES["ann"], seconds=8.0, seed=3))]
    for stranger in strangers:
        obj = json.loads(fewshot("identify", "--group", "family", "--json", stranger, home=home).stdout)
        assert obj["speaker"] == "unknown" and obj["nearest"] in PEOPLE, obj  # the member it was nearest, as text says


def test_bad_input_exit_status(home, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    proc = fewshot("identify", "--group", "family", empty, home=home, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {empty}: file is empty (0 bytes)"
    proc = fewshot("identify", "--group", "nobody", empty, home=home, check=False)
    assert proc.returncode == 2 and "no group named 'nobody'" in proc.stderr
    text = tmp_path / "notes.mp3"  # not audio, whatever its name says
    text.write_text("my notes, not a recording\n")
    line = one_error_line(fewshot("identify", "--group", "family", text, home=home, check=False))
    assert line.startswith(f"error: {text}: unreadable or corrupt audio: neither libsndfile nor ffmpeg "
                           "decodes it ("), line
    # an RTTM file is written only when some file was identified, never an empty one
    rttm = tmp_path / "out.rttm"
    assert fewshot("identify", "--group", "family", "--rttm", rttm, text, empty, home=home, check=False).returncode == 2
    assert not rttm.exists()


def test_upgrading_a_group_already_on_the_model_says_so(home):
    """`groups upgrade G` of a current group has nothing to do, as plain `groups upgrade` says (speech not kept)."""
    from fewshot.extractor import load_extractor

    model_id = load_extractor().model_id
    assert fewshot("groups", "upgrade", "family", home=home).stdout == \
        f"group 'family' already uses extractor {model_id}: nothing to upgrade\n"
    assert fewshot("groups", "upgrade", home=home).stdout == \
        f"every group already uses extractor {model_id}: nothing to upgrade\n"


def test_live_takes_the_demos_options(tmp_path):
    """`fewshot live` hands every option to the demo, --help included."""
    assert "usage: fewshot live" in fewshot("live", "--help", home=tmp_path).stdout
    for args in (["live", "--group", "home", "--json"], ["-v", "live", "--", "--group", "home", "--json"]):
        proc = fewshot(*args, home=tmp_path, check=False)
        assert proc.returncode == 2 and "--json goes with --input FILE" in proc.stderr, proc.stderr


def test_a_missing_extra_is_one_line(tmp_path, voice):
    """After `pip install .` (the runtime alone), a command that needs an extra names it, without a traceback,
    before any work (evaluate and export check first)."""
    wav = write_wav(tmp_path / "v.wav", voice("ann", 3.0))
    code = ("import sys\n"
            "for name in ('librosa', 'matplotlib', 'tensorflow'): sys.modules[name] = None  # as if not installed\n"
            "from fewshot.cli import main\n"
            "for args in (['spectrogram', sys.argv[1], '-o', sys.argv[2]],\n"
            "             ['evaluate', sys.argv[3], '--out', sys.argv[2]], ['export', '--out', sys.argv[2]]):\n"
            "    print(main(args))")
    proc = subprocess.run([sys.executable, "-c", code, str(wav), str(tmp_path / "out"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "2", "2"], proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: fewshot {command} needs {name}, which the '{extra}' extra installs: pip install 'fewshot[{extra}]' "
        "(in a clone: bash scripts/setup.sh installs every extra)"
        for command, name, extra in (("spectrogram", "librosa", "eval"), ("evaluate", "matplotlib", "eval"),
                                     ("export", "tensorflow", "train"))]
    assert not (tmp_path / "out").exists()
