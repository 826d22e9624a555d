"""End-to-end tests of ``demo/live.py``: file mode, no microphone, and a virtual microphone.

The microphone tests run the real audio stack: a PulseAudio daemon started
here with ``module-pipe-source`` as the default source, recorded through
PortAudio's ALSA ``pulse`` device, the demo driven in a pseudo-terminal. The
voices are espeak-ng's, different enough for any reasonable extractor.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import live_helpers as H
import synth

pexpect = pytest.importorskip("pexpect")

DEMO = H.REPO / "demo" / "live.py"
LABEL = re.compile(r"\[(\d\d):(\d\d\.\d) - (\d\d):(\d\d\.\d)\]\s+(\S+)\s+score (-?\d+\.\d+)")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def voices():
    """Per voice: enrollment speech (~25 s) and test utterances (each a trimmed passage)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    out = {}
    for name in synth.ESPEAK_VOICES:
        enroll = synth.voice_audio(name, synth.TEXTS[:3])
        tests = [H.trim_ends(synth.speak(t, **synth.ESPEAK_VOICES[name])) for t in synth.TEXTS[3:5]]
        out[name] = (enroll, tests)
    return out


@pytest.fixture(scope="module")
def model(voices):
    """The shipped model; it must tell the test voices apart for the demo's answers to mean anything."""
    from fewshot.model.extractor import default_model_dir, load_extractor

    ex = load_extractor()
    names = list(voices)
    C = ex.embed([voices[n][0] for n in names])
    hits = total = 0
    for i, n in enumerate(names):
        y = np.concatenate(voices[n][1])
        T = ex.embed([y[j : j + 4 * H.SR] for j in range(0, len(y) - 4 * H.SR, 2 * H.SR)])
        hits += int(np.sum(np.argmax(T @ C.T, axis=1) == i))
        total += len(T)
    assert hits >= 0.9 * total, f"the shipped model tells the test voices apart in only {hits} of {total} windows"
    return default_model_dir()


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "fewshot_home"
    h.mkdir()
    return h


@pytest.fixture(scope="module")
def mic(tmp_path_factory):
    root = Path(f"/tmp/fewshot-vmic-{os.getpid()}")  # short: unix socket paths are limited to 108 bytes
    try:
        with H.VirtualMic(root) as m:
            yield m
    except H.PulseUnavailable as exc:
        pytest.skip(f"PulseAudio cannot start here, so there is no virtual microphone: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_demo(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, str(DEMO), *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout
    )


def spawn_demo(*args, env, log_path, sigint_ignored=False):
    """The demo on a pseudo-terminal; ``sigint_ignored`` starts it as a script's background job would be."""
    child = pexpect.spawn(
        sys.executable,
        [str(DEMO), *map(str, args)],
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(40, 120),
        timeout=60,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
    )
    child.logfile_read = open(log_path, "w", encoding="utf-8", newline="")
    return child


def stop(child) -> None:
    """Close the pseudo-terminal; kill the demo if it is still running (after a failure)."""
    try:
        child.close(force=True)
    except pexpect.ExceptionPexpect:  # too slow to die on a busy machine
        os.kill(child.pid, 9)
        child.wait()
    child.logfile_read.close()


def store_snapshot(home: Path) -> dict:
    from fewshot.store.enrollments import EnrollmentStore

    with EnrollmentStore(home / "enrollments.sqlite") as store:
        snap = {"groups": store.groups()}
        for g in snap["groups"]:
            snap[g["name"]] = [(s.name, s.seconds, s.n_segments) for s in store.speakers(g["name"])]
            X, y = store.embeddings(g["name"], extractor_id=g["extractor_id"])
            snap[g["name"] + "/X"] = (X.tobytes(), tuple(y))
    return snap


# ---------------------------------------------------------------------------- file mode
def test_file_mode_timeline_and_json(voices, model, home, tmp_path):
    env = dict(os.environ, FEWSHOT_HOME=str(home))
    enroll = []
    for name, (y, _) in voices.items():
        enroll += ["--enroll", f"{name}={synth.write_wav(tmp_path / f'{name}.wav', y)}"]
    gap = np.zeros(int(1.5 * H.SR), np.float32)
    spans, parts, t = {}, [gap], len(gap) / H.SR
    for name, (_, tests) in voices.items():
        spans[name] = (t, t + len(tests[1]) / H.SR)
        parts += [tests[1], gap]
        t = spans[name][1] + len(gap) / H.SR
    talk = synth.write_wav(tmp_path / "talk.wav", np.concatenate(parts))

    r = run_demo("--model", model, "--group", "club", *enroll, "--input", talk, env=env)
    assert r.returncode == 0, r.stderr
    for name in voices:
        assert f"enrolled {name!r} in group 'club'" in r.stdout
    timeline = re.findall(r"^\s+(\d+\.\d+) -\s+(\d+\.\d+) s\s+(\S+)\s+score", r.stdout, re.M)
    assert timeline, r.stdout

    r = run_demo("--model", model, "--group", "club", "--input", talk, "--json", env=env)  # store kept them
    assert r.returncode == 0, r.stderr
    turns = H.json_lines(r.stdout)
    assert len(turns) == len(timeline) and r.stdout.strip().count("\n") == len(turns) - 1
    assert [(f"{t['start']:.2f}", f"{t['end']:.2f}", t["speaker"]) for t in turns] == timeline
    for turn in turns:  # one JSON line per final turn, in seconds of the input
        assert set(turn) == {"start", "end", "speaker", "score"}
        assert 0 <= turn["start"] < turn["end"] <= t + 0.1 and isinstance(turn["score"], float)
        inside = [n for n, (a, b) in spans.items() if a - 0.1 <= turn["start"] and turn["end"] <= b + 0.1]
        assert len(inside) == 1, f"turn {turn} spans two speakers or a pause"
    for name, (a, b) in spans.items():  # each speaker's speech is theirs: their turns cover 90% of it
        got = sum(u["end"] - u["start"] for u in turns if u["speaker"] == name and a - 0.1 <= u["start"] <= b)
        assert got >= 0.9 * (b - a) - 0.3, (name, turns)


# ---------------------------------------------------------------------------- speech in a stream
def feed(obj, y, block_s=0.05):
    out = []
    for i in range(0, len(y), int(block_s * H.SR)):
        out += obj.add(y[i : i + int(block_s * H.SR)]) or []
    return out


def test_enrollment_take_counts_speech_only_and_warns(voices):
    from fewshot.live.speech import EnrollmentTake

    y = voices["ann"][1][0][: 6 * H.SR]
    take = EnrollmentTake(sr=H.SR)
    feed(take, np.concatenate([np.zeros(3 * H.SR, np.float32), y, np.zeros(2 * H.SR, np.float32)]))
    assert 3.5 < take.speech_s <= 6.0 and abs(take.seconds - 11.0) < 0.06
    assert take.warnings() == []
    assert len(take.audio()) == 11 * H.SR

    loud = EnrollmentTake(sr=H.SR)
    feed(loud, np.clip(y * 20, -1, 1))
    assert loud.clipping_now and any("clipped" in w for w in loud.warnings())
    quiet = EnrollmentTake(sr=H.SR)
    feed(quiet, y * 0.01)
    assert quiet.too_quiet_now and any("quiet" in w for w in quiet.warnings()) and quiet.speech_s > 1.5


def test_file_mode_checks_everything_before_storing(tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, FEWSHOT_HOME=str(home))
    good = synth.write_wav(tmp_path / "good.wav", synth.synth_voice(**synth.VOICES["ann"], seconds=16.0))
    bad = tmp_path / "nan.wav"
    import soundfile as sf

    sf.write(bad, np.full(H.SR * 3, np.nan, np.float32), H.SR, subtype="FLOAT")
    silence = synth.write_wav(tmp_path / "silence.wav", np.zeros(H.SR * 3, np.float32))
    loud = synth.synth_voice(**synth.VOICES["bob"], seconds=16.0)
    clipped = synth.write_wav(tmp_path / "clipped.wav", np.clip(loud / np.abs(loud).max() * 4, -1, 1))
    for args, culprit in (
        (["--enroll", f"ann={good}", "--enroll", f"bob={bad}"], "nan.wav"),
        (["--enroll", f"ann={good}", "--enroll", f"bob={clipped}"], "clipped.wav"),
        (["--enroll", f"ann={good}", "--input", str(silence)], "silence.wav"),
        (["--enroll", f"ann={good}", "--log", str(tmp_path / "no" / "dir" / "x.tsv")], "no/dir"),
    ):
        r = run_demo(*args, env=env, timeout=120)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and culprit in lines[0], r.stderr
        assert not home.exists()  # nothing stored, not even an empty store
        assert not (tmp_path / "no").exists()
    log = tmp_path / "session.tsv"
    r = run_demo("--enroll", f"ann={good}", "--log", str(log), env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert log.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------------------- no microphone
def no_microphone_env(tmp_path) -> dict:
    """An environment in which PortAudio finds no input: no sound server to reach, none to start."""
    (tmp_path / "client.conf").write_text("autospawn = no\n")
    return dict(
        os.environ,
        HOME=str(tmp_path),
        XDG_RUNTIME_DIR=str(tmp_path),
        PULSE_SERVER=f"unix:{tmp_path}/no-such-socket",
        PULSE_CLIENTCONFIG=str(tmp_path / "client.conf"),
        FEWSHOT_HOME=str(tmp_path / "home"),
    )


def advice(stderr: str) -> list[str]:
    """The commands the no-microphone error prints (its lines indented by two spaces)."""
    return [ln.strip() for ln in stderr.splitlines() if ln.startswith("  ")]


def test_no_input_device_explains_and_exits_2(tmp_path):
    """Where PortAudio finds no input (no sound card, no sound server): the reason and commands that run as printed."""
    if list(Path("/dev/snd").glob("pcmC*c")):
        pytest.skip("this machine has a capture sound card, which PortAudio always lists")
    env = no_microphone_env(tmp_path)
    r = subprocess.run(
        [sys.executable, str(DEMO), "--group", "family"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith("error: no microphone to record from: "), r.stderr
    assert not (tmp_path / "home").exists()  # nothing was created
    # the commands it prints work as printed, from the same folder, with this interpreter
    commands = advice(r.stderr)
    assert len(commands) == 2, r.stderr
    assert commands[0].startswith(f"{sys.executable} -m fewshot.live.examples")
    assert commands[1].startswith(f"{sys.executable} {DEMO} --group family --enroll ann=voices/ann1.wav")
    for command in commands:
        r = subprocess.run(shlex.split(command), env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert r.returncode == 0, command + "\n" + r.stderr
    turns = [ln.split()[4] for ln in r.stdout.splitlines() if re.match(r"\s+\d+\.\d\d - ", ln)]
    assert turns == ["ann", "bob", "ann", "bob"], r.stdout


def test_device_that_does_not_exist(mic, tmp_path):
    env = dict(mic.env, FEWSHOT_HOME=str(tmp_path / "home"))
    r = run_demo("--list-devices", env=env, timeout=60)
    assert r.returncode == 0 and "pulse" in r.stdout, r.stdout + r.stderr
    for device in ("no-such-microphone", "97"):
        r = run_demo("--device", device, env=env, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.startswith("error: no microphone") and "'pulse'" in r.stderr, r.stderr
        typed = f"{os.path.relpath(sys.executable)} {os.path.relpath(DEMO)}"
        assert advice(r.stderr)[1].startswith(f"{typed} --enroll ann="), r.stderr


# ---------------------------------------------------------------------------- virtual microphone
@pytest.mark.slow
def test_microphone_enroll_then_identify(mic, voices, model, home, tmp_path):
    env = dict(mic.env, FEWSHOT_HOME=str(home))
    raw = tmp_path / "terminal.log"
    child = spawn_demo("--model", model, "--seconds", 15, "--countdown", 1, env=env, log_path=raw)
    try:
        child.expect("Name of the person to enroll: ", timeout=300)  # loading TensorFlow on a busy machine
        for i, name in enumerate(["ann", "bob"]):
            if i:
                child.expect(r"Name of the next person \(just Enter to start listening\): ")
            child.sendline(name)
            child.expect("Press Enter to start recording")
            child.sendline("")
            child.expect(f"Recording {name}: read now.", timeout=30)
            mic.play(voices[name][0])
            child.expect(f"Enrolled '{name}' in group 'live': ", timeout=180)
            mic.clear()
        child.expect(r"Name of the next person \(just Enter to start listening\): ")
        child.sendline("")
        child.expect("Listening for ann, bob")
        gap = np.zeros(int(2.0 * H.SR), np.float32)
        script = [(name, H.trim_ends(voices[name][1][i][: 6 * H.SR])) for i in (0, 1) for name in ("ann", "bob")]
        mic.events.clear()
        for k, (name, y) in enumerate(script):
            mic.play(y, tag=f"{k}:{name}")
            mic.play(gap)
        seen = []  # (wall time the label line appeared, match)
        deadline = time.time() + sum(len(y) + len(gap) for _, y in script) / H.SR + 60
        while time.time() < deadline:  # until all is played and no label came for 2 s
            if child.expect([LABEL, pexpect.TIMEOUT], timeout=0.2) == 0:
                seen.append((time.time(), child.match))
            elif (
                len(mic.events) == len(script)
                and mic.events[-1]["end"]
                and time.time() > max([mic.events[-1]["end"]] + [s[0] for s in seen]) + 2.0
            ):
                break
        child.send("x")  # remove a person, then back to listening
        child.expect(r"Remove whom \(ann, bob; Enter to go back\)\? ")
        child.sendline("bob")
        child.expect("Removed 'bob' and their voiceprint from group 'live'.")
        child.expect("Listening for ann ")
        child.expect("dBFS   listening")
        mic.play(script[0][1])  # ann again, after the removal: the clock goes on
        child.expect(LABEL, timeout=60)
        child.send("q")
        child.expect("Bye.")
        child.expect(r"Session log:\s+(\S+\.tsv)")
        log_path = Path(child.match.group(1).strip())
        child.expect(pexpect.EOF)
    finally:
        stop(child)
    with open(raw, encoding="utf-8", errors="replace", newline="") as f:
        transcript = H.render_terminal(f.read())
    (tmp_path / "terminal.txt").write_text(transcript)
    print("\n--- captured terminal session ---\n" + transcript)
    assert child.exitstatus == 0, transcript

    # The session log has one row per printed turn, with the turn's times in stream seconds.
    rows = [line.split("\t") for line in log_path.read_text().splitlines() if not line.startswith("#")]
    assert rows[0][:3] == ["time", "event", "start_s"]
    assert [r[1] for r in rows[1:] if r[1] != "turn"] == [
        "enrolled",
        "enrolled",
        "listening",
        "removed",
        "listening",
        "stopped",
    ]
    turns = [(float(r[2]), float(r[3]), r[4]) for r in rows if r[1] == "turn"]
    last = turns.pop()  # the one heard after the removal, on the session's single clock
    assert last[0] > turns[-1][1], (last, turns[-1])
    assert [t[2] for t in turns] == [m.group(5) for _, m in seen]
    # long prompts wrap between words at the terminal's width (120 columns here); only a single
    # unbreakable word, such as the session log's path under a deep temporary folder, may run past it
    assert all(len(line) <= 120 or " " not in line.strip() for line in transcript.splitlines()), transcript

    # Who was heard: turns never overlap, and the 2 s pauses between utterances end them, so they fall into
    # one group per utterance (a turn starting over 1 s after the previous one ended opens the next).
    per_utt = []
    for i, (start, _, _) in enumerate(turns):
        if i == 0 or start >= turns[i - 1][1] + 1.0:
            per_utt.append([])
        per_utt[-1].append(i)
    labels = [[turns[i][2] for i in idx] for idx in per_utt]
    print("labels per utterance:", labels)
    assert len(per_utt) == len(script), labels
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(turns)), turns
    for (name, _), idx in zip(script, per_utt):
        said = {turns[i][2]: 0.0 for i in idx}
        for i in idx:
            said[turns[i][2]] += turns[i][1] - turns[i][0]
        assert max(said, key=said.get) == name, labels

    # Latency: from the moment the last sample of a turn went into the FIFO to its line on screen (a turn
    # that ends with its utterance is final after the 0.5 s pause that ends it). Stream time maps to a
    # position in the utterance through its onset; the pump logged when each chunk was written.
    latency = []
    for k, idx in enumerate(per_utt):
        onset_s = turns[idx[0]][0]
        for i in idx:
            latency.append(seen[i][0] - mic.written_at(k, turns[i][1] - onset_s))
    report = (
        f"latency from the end of a turn (its last sample into the FIFO) to its line on screen: median "
        f"{statistics.median(latency):.2f} s over {len(latency)} turns (min {min(latency):.2f}, "
        f"max {max(latency):.2f})"
    )
    print(report)
    (tmp_path / "latency.txt").write_text(report + "\n")
    assert min(latency) > 0 and statistics.median(latency) < 5.0, report


def test_ctrl_c_during_enrollment_keeps_the_store(mic, voices, model, home, tmp_path):
    from fewshot.identifier import SpeakerIdentifier
    from fewshot.model.extractor import load_extractor

    sid = SpeakerIdentifier(load_extractor(model), store=home / "enrollments.sqlite")
    for name in ("ann", "bob"):
        sid.enroll("live", name, voices[name][0][: 16 * H.SR])
    sid.store.close()
    before = store_snapshot(home)

    env = dict(mic.env, FEWSHOT_HOME=str(home))
    # started with SIGINT ignored, as a background job of a script inherits it: Ctrl-C must still stop the demo
    child = spawn_demo(
        "--model", model, "--seconds", 15, "--countdown", 1, env=env, log_path=tmp_path / "t.log", sigint_ignored=True
    )
    try:
        child.expect("Listening for ann, bob", timeout=300)
        child.send("a")
        child.expect("Name of the person to enroll")
        child.sendline("cyd")
        child.expect("Press Enter to start recording")
        child.sendline("")
        child.expect("Recording cyd: read now.", timeout=30)
        mic.play(voices["cyd"][0])
        child.expect(r"speech\s+([3-9]|1[0-2])\.\d / 15 s", timeout=90)  # well before the 15 s target
        child.kill(signal.SIGINT)  # what Ctrl-C at a terminal sends the demo
        child.expect("the enrollment of 'cyd' was not finished and is dropped")
        child.expect("Kept in group 'live': ann, bob.")
        child.expect(pexpect.EOF)
    finally:
        mic.clear()
        stop(child)
    assert child.exitstatus == 130
    assert "Traceback" not in (tmp_path / "t.log").read_text()
    assert store_snapshot(home) == before
