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

TEXT = (
    "The north wind and the sun were disputing which was the stronger, when a traveller came along "
    "wrapped in a warm cloak. They agreed that the one who first succeeded in making the traveller "
    "take his cloak off should be considered stronger than the other. "
)
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
        proc = subprocess.run(
            [sys.executable, "-m", "fewshot.cli", *args], env=env, capture_output=True, text=True, timeout=300
        )
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

    strangers = [
        espeak(tmp_path / "klatt.wav", TEST_TEXT * 2, voice="en+klatt", pitch=90),
        write_wav(tmp_path / "pulse.wav", synth_voice(**VOICES["ann"], seconds=8.0, seed=3)),
    ]
    for stranger in strangers:
        obj = json.loads(fewshot("identify", "--group", "family", "--json", stranger, home=home).stdout)
        assert obj["speaker"] == "unknown" and obj["nearest"] in PEOPLE, obj  # the member it was nearest, as text says


def test_verify_accepts_the_person_and_rejects_others(home, voices, tmp_path):
    files = [voices["amy"][1], voices["bert"][1], voices["carl"][1]]
    proc = fewshot("verify", "--group", "family", "--speaker", "amy", "--json", *files, home=home)
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [set(o) for o in objs] == [{"file", "speaker", "accepted", "score", "threshold"}] * 3
    assert [o["file"] for o in objs] == [str(f) for f in files] and {o["speaker"] for o in objs} == {"amy"}
    assert [o["accepted"] for o in objs] == [True, False, False]  # exit status 0 either way
    assert objs[0]["score"] >= objs[0]["threshold"]  # the others: below it, or named as bert and carl by the group
    strict = [
        json.loads(line)
        for line in fewshot(
            "verify", "--group", "family", "--speaker", "amy", "--json", "--strict", *files, home=home
        ).stdout.splitlines()
    ]
    assert strict[0]["threshold"] > objs[0]["threshold"]  # fewer false accepts asked: a higher bar
    assert [o["score"] for o in strict] == [o["score"] for o in objs]
    plain = fewshot("verify", "--group", "family", "--speaker", "amy", files[1], home=home).stdout
    assert plain.startswith(f"{files[1]}: rejected as amy (score ")
    klatt = espeak(tmp_path / "klatt.wav", TEST_TEXT * 2, voice="en+klatt", pitch=90)
    assert "rejected" in fewshot("verify", "--group", "family", "--speaker", "bert", klatt, home=home).stdout


def test_verify_refuses_a_person_outside_the_group(home, voices, tmp_path):
    proc = fewshot("verify", "--group", "family", "--speaker", "dora", voices["amy"][1], home=home, check=False)
    assert proc.returncode == 2 and "'dora' is not enrolled in group 'family'" in proc.stderr
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    proc = fewshot(
        "verify", "--group", "family", "--speaker", "amy", "--json", empty, voices["amy"][1], home=home, check=False
    )
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {empty}: file is empty (0 bytes)"
    assert json.loads(proc.stdout)["accepted"] is True


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
    assert line.startswith(f"error: {text}: unreadable or corrupt audio: neither libsndfile nor ffmpeg decodes it ("), (
        line
    )
    # an RTTM file is written only when some file was identified, never an empty one
    rttm = tmp_path / "out.rttm"
    assert fewshot("identify", "--group", "family", "--rttm", rttm, text, empty, home=home, check=False).returncode == 2
    assert not rttm.exists()


def test_upgrading_a_group_already_on_the_model_says_so(home):
    """`groups upgrade G` of a current group has nothing to do, as plain `groups upgrade` says (speech not kept)."""
    from fewshot.model.extractor import load_extractor

    model_id = load_extractor().model_id
    assert (
        fewshot("groups", "upgrade", "family", home=home).stdout
        == f"group 'family' already uses extractor {model_id}: nothing to upgrade\n"
    )
    assert (
        fewshot("groups", "upgrade", home=home).stdout
        == f"every group already uses extractor {model_id}: nothing to upgrade\n"
    )


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
    code = (
        "import sys\n"
        "for name in ('librosa', 'matplotlib', 'tensorflow'): sys.modules[name] = None  # as if not installed\n"
        "from fewshot.cli import main\n"
        "for args in (['spectrogram', sys.argv[1], '-o', sys.argv[2]],\n"
        "             ['evaluate', sys.argv[3], '--out', sys.argv[2]], ['export', '--out', sys.argv[2]]):\n"
        "    print(main(args))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(wav), str(tmp_path / "out"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.split() == ["2", "2", "2"], proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: fewshot {command} needs {name}, which the '{extra}' extra installs: pip install 'fewshot[{extra}]' "
        "(in a clone: bash scripts/setup.sh installs every extra)"
        for command, name, extra in (
            ("spectrogram", "librosa", "eval"),
            ("evaluate", "matplotlib", "eval"),
            ("export", "tensorflow", "train"),
        )
    ]
    assert not (tmp_path / "out").exists()


def test_short_enrollment_warns(tmp_path, voices):
    home = tmp_path / "h"
    short = tmp_path / "short.wav"
    import soundfile as sf

    y, sr = sf.read(voices["amy"][0])
    sf.write(short, y[: 14 * sr], sr)
    proc = fewshot("enroll", "--group", "g", "--speaker", "amy", short, home=home)
    seconds = float(re.search(r": ([\d.]+) s of speech used", proc.stdout).group(1))
    assert 10.0 < seconds < 15.0
    assert proc.stderr == f"warning: only {seconds:.1f} s of speech for 'amy'; 15-35 s gives reliable results\n"


def test_groups_commands(tmp_path, voices):
    home = tmp_path / "h"
    for name in ("amy", "bert"):
        fewshot("enroll", "--group", "g", "--speaker", name, voices[name][0], home=home)
    assert "g: 2 people (amy, bert)" in fewshot("groups", home=home).stdout
    show = fewshot("groups", "show", "g", home=home).stdout
    assert "amy:" in show and "bert.wav" in show
    fewshot("groups", "remove", "g", "amy", home=home)
    assert "g: 1 person (bert)" in fewshot("groups", home=home).stdout
    # a group of one verifies: bert is accepted
    assert (
        json.loads(fewshot("identify", "--group", "g", "--json", voices["bert"][1], home=home).stdout)["speaker"]
        == "bert"
    )
    fewshot("groups", "delete", "g", home=home)
    assert "no groups yet" in fewshot("groups", home=home).stdout


def test_spectrogram_command(tmp_path, voice):
    wav = write_wav(tmp_path / "v.wav", voice("ann", 3.0))
    out = tmp_path / "v.png"
    proc = fewshot("spectrogram", wav, "-o", out, home=tmp_path)
    assert out.read_bytes()[:4] == b"\x89PNG" and "wrote" in proc.stdout


def test_help_for_every_subcommand(tmp_path):
    for cmd in ("enroll", "identify", "verify", "groups", "spectrogram"):
        assert "usage: fewshot " + cmd in fewshot(cmd, "--help", home=tmp_path).stdout


def one_error_line(proc) -> str:
    """The single ``error: ...`` line of a refused command (exit status 2)."""
    assert proc.returncode == 2 and proc.stdout == "", (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].isprintable(), proc.stderr
    return lines[0]


def test_store_option_checks_before_it_changes_anything(tmp_path, voices):
    folder, text = tmp_path / "folder", tmp_path / "notes.txt"
    folder.mkdir()
    text.write_text("my notes\n")
    os.chmod(folder, 0o755)
    os.chmod(text, 0o644)
    for path in (folder, text):
        for args in (
            ["groups"],
            ["groups", "show", "g"],
            ["enroll", "--group", "g", "--speaker", "amy", voices["amy"][0]],
        ):
            proc = fewshot(*args, "--store", path, home=tmp_path / "h", check=False)
            assert one_error_line(proc) == f"error: {path}: not a fewshot store"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755 and list(folder.iterdir()) == []
    assert stat.S_IMODE(os.stat(text).st_mode) == 0o644 and text.read_text() == "my notes\n"


def test_read_only_commands_create_nothing(tmp_path, voices):
    home = tmp_path / "h"
    assert fewshot("groups", home=home).stdout.startswith("no groups yet")
    for args in (
        ["groups", "show", "family"],
        ["groups", "remove", "family", "amy"],
        ["identify", "--group", "family", voices["amy"][1]],
    ):
        assert "no group named 'family' (groups: none yet)" in one_error_line(fewshot(*args, home=home, check=False))
    assert not home.exists()


def test_enrolling_again_adds_and_says_so(tmp_path, voices):
    home = tmp_path / "h"
    enroll, more = voices["amy"]
    first = fewshot("enroll", "--group", "g", "--speaker", "amy", enroll, home=home).stdout
    s1 = float(re.search(r": ([\d.]+) s of speech used", first).group(1))
    proc = fewshot("enroll", "--group", "g", "--speaker", "amy ", more, home=home)
    s2 = float(re.search(r"^added ([\d.]+) s", proc.stdout).group(1))
    assert proc.stdout == (
        f"added {s2:.1f} s to 'amy' in group 'g' (now {s1 + s2:.1f} s); use --replace to start over\n"
    )
    assert f"amy: {s1 + s2:.1f} s" in fewshot("groups", "show", "g", home=home).stdout
    again = fewshot("enroll", "--group", "g", "--speaker", "amy", enroll, home=home, check=False)
    assert one_error_line(again) == (
        "error: amy.wav: already enrolled for 'amy' in group 'g'; use --replace to start over"
    )
    assert f"amy: {s1 + s2:.1f} s" in fewshot("groups", "show", "g", home=home).stdout
    replaced = fewshot("enroll", "--group", "g", "--speaker", "amy", enroll, "--replace", home=home).stdout
    assert (
        replaced.startswith("enrolled 'amy'") and f"amy: {s1:.1f} s" in fewshot("groups", "show", "g", home=home).stdout
    )


def test_names_are_normalised_and_checked(tmp_path, voices):
    home = tmp_path / "h"
    for bad in ("amy\x1b[2J", "amy\nbert", " "):
        proc = fewshot("enroll", "--group", "g", "--speaker", bad, voices["amy"][0], home=home, check=False)
        assert one_error_line(proc).startswith("error: the person name ")
    assert "group name" in one_error_line(fewshot("groups", "show", "g\x1b]0;x\x07", home=home, check=False))
    assert not home.exists()
    fewshot("enroll", "--group", "g ", "--speaker", " Zoe\u0308", voices["amy"][0], home=home)
    assert fewshot("groups", home=home).stdout == "g: 1 person (Zo\u00eb)\n"
    assert fewshot("enroll", "--group", "g", "--speaker", "Zo\u00eb", voices["amy"][1], home=home).stdout.startswith(
        "added "
    )


def test_clipped_audio_is_refused_unless_forced(tmp_path, voices):
    import numpy as np
    import soundfile as sf

    y, _ = sf.read(voices["bert"][0], dtype="float32")
    heavy = write_wav(tmp_path / "heavy.wav", np.clip(y / np.quantile(np.abs(y), 0.58), -1.0, 1.0), sr=SR)
    home = tmp_path / "h"
    line = one_error_line(fewshot("enroll", "--group", "g", "--speaker", "bert", heavy, home=home, check=False))
    assert re.fullmatch(rf"error: {re.escape(str(heavy))}: 4\d% of the samples are clipped .*--force.*", line)
    assert not home.exists()
    proc = fewshot("enroll", "--group", "g", "--speaker", "bert", heavy, "--force", home=home)
    assert re.match(rf"warning: {re.escape(str(heavy))}: 4\d\.\d% of the samples are clipped", proc.stderr)
    assert proc.stdout.startswith("enrolled 'bert'")


def test_identify_segments_are_turns_in_file_time_and_rttm(home, tmp_path):
    """A conversation of the three enrolled voices: turns within 0.5 s of where each person speaks in the file."""
    import numpy as np

    from fewshot.audio.vad import speech_intervals
    from synth import speak

    lines = [
        "Yesterday I walked to the market to buy apples and bread.",
        "The weather was cold but bright.",
        "Then we went home and made a pot of tea for everyone.",
    ]
    plan = [("amy", lines[0], 0.7), ("bert", lines[1], 0.4), ("carl", lines[2], 1.5), ("amy", lines[1], 0.0)]
    parts, reference, n = [np.zeros(SR // 2, np.float32)], [], SR // 2
    for who, text, pause in plan:
        voice, pitch = PEOPLE[who]
        y = speak(text, voice=voice, pitch=pitch, speed=165)
        edges = speech_intervals(y, sr=SR)
        y = y[edges[0, 0] : edges[-1, 1]]
        parts += [y, np.zeros(int(pause * SR), np.float32)]
        reference.append((n / SR, (n + len(y)) / SR, who))
        n += len(y) + int(pause * SR)
    path = write_wav(tmp_path / "talk.wav", np.concatenate(parts))
    rttm = tmp_path / "out" / "talk.rttm"
    rttm.parent.mkdir()
    obj = json.loads(
        fewshot("identify", "--group", "family", "--json", "--segments", "--rttm", rttm, path, home=home).stdout
    )
    turns = obj["segments"]
    assert [t["speaker"] for t in turns] == [who for _, _, who in reference]
    for t, (start, end, _) in zip(turns, reference):
        assert abs(t["start"] - start) <= 0.5 and abs(t["end"] - end) <= 0.5, (t, start, end)
    records = [line.split() for line in rttm.read_text().splitlines()]
    assert [r[:3] + r[5:7] + r[8:] for r in records] == [["SPEAKER", "talk", "1", "<NA>", "<NA>", "<NA>", "<NA>"]] * 4
    assert [(float(r[3]), float(r[4]), r[7]) for r in records] == [
        pytest.approx((t["start"], t["end"] - t["start"], t["speaker"]), abs=1e-3) for t in turns
    ]
    text = fewshot("identify", "--group", "family", "--segments", path, home=home).stdout.splitlines()
    assert re.fullmatch(r"\s+0\.\d\d - +\d+\.\d\d s  amy \(0\.\d{3}\)", text[1])
    assert len(text) == 1 + len(turns)
