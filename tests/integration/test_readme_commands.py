"""Every command of ``README.md`` and ``docs/*.md``, as typed, from a fresh folder: run and checked, or listed in
SKIP with the reason.

The folder is set out as a clone is, seen from where the README's commands are typed: ``.venv``, ``scripts``,
``demo`` and ``fewshot`` link to this checkout's, ``../shared`` to its data; ``FEWSHOT_HOME`` is a folder of
its own, and PortAudio finds no microphone (no sound server to reach), as for someone without one, so the
demo's advice is followed too: the commands it prints run as printed.

Collected from the README, then each page of ``docs/`` in name order, read as one text (:func:`documented_text`):
each line of the fenced ``bash`` blocks (``\\`` continuations joined, a trailing ``# comment`` dropped, ``a && b``
as two commands; a comment ``# -> TEXT`` is the expected output), the ``$`` lines of ``console`` blocks with the
output under them (numbers within 0.05; ``...`` ends what is shown of a JSON list), the ``python`` block, then the
inline ``.venv/bin/...`` commands of the prose (run after the fenced ones, whose groups and recordings they use). A
command that is not in SKIP is run and must exit 0 (or as EXPECTED says); one in SKIP is only checked statically (a
``fewshot`` command parses; a script exists and has the options used). A new command is therefore run, and a slow
one fails here until it is listed in SKIP; an entry of SKIP that they no longer have fails too. Last, everything the
commands wrote into the folder must be ignored by ``.gitignore``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
from test_no_tensorflow import CHECK_ASKED, REFUSE_TENSORFLOW

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
LINKED = (".venv", "scripts", "demo", "fewshot")

_DATA = "needs ../shared/data (not in a clone)"
SKIP = {
    ".venv/bin/ray start --head --port 6379": "starts a Ray cluster node on this machine's network; "
    "tests/integration/data_tools/test_cluster_build.py starts one on 127.0.0.1",
    ".venv/bin/ray start --address HEAD:6379": "joins another machine's cluster (HEAD is a placeholder)",
    ".venv/bin/python scripts/scrape_librivox.py --out /shared/corpus --speakers 6000 --minutes 240 --cluster auto": "downloads 6,000 narrators from LibriVox on a cluster; the cluster tests build from a loopback stand-in",
    ".venv/bin/fewshot serve": "a server that runs until stopped; tests/integration/test_web_api.py starts it on a "
    "free port and drives it, test_web_browser.py in Chromium",
    "bash scripts/setup.sh": "installs system and PyPI packages (network, minutes); .ci/run runs it from scratch",
    ".venv/bin/python -m pytest": "the test suite, this test included",
    ".venv/bin/python -m pytest tests/unit": "the test suite's unit tier",
    ".venv/bin/python -m pytest -m cluster -n 0": "starts a two-node Ray cluster on 127.0.0.1; "
    ".ci/run runs it after the suite",
    ".venv/bin/python -m pytest -m lint -n 0": "the suite's ruff checks, which the suite runs anyway",
    ".venv/bin/fewshot evaluate ../shared/data/dev --out report --baselines": f"{_DATA} and 7 minutes; tests/integration/test_evaluate.py runs evaluate on a small tree",
    ".venv/bin/fewshot evaluate ../shared/data/dev --out report-conditions --conditions all --group-sizes 3 10 all "
    "--enroll-seconds 15 --curve-seconds 15": f"{_DATA} and 3.5 minutes; test_evaluate.py runs --conditions",
    ".venv/bin/fewshot evaluate ../shared/data/dev --out report-decisions --conditions default --group-sizes 3 10 "
    "all --enroll-seconds 15 --curve-seconds 15": f"{_DATA} and 23 minutes; test_evaluate.py runs --conditions",
    ".venv/bin/fewshot evaluate ../shared/data/dev --out report-rec --conditions rec10,rec5,room0.3+rec20,room0.6+rec10 "
    "--group-sizes 3 10 all --enroll-seconds 15 --curve-seconds 15": f"{_DATA} and minutes; test_evaluate.py runs the rec* conditions on recordings of its own",
    ".venv/bin/python scripts/benchmark_speed.py --parts enroll --repeats 7": f"{_DATA}; a benchmark of minutes",
    ".venv/bin/python scripts/benchmark_speed.py --parts speed --repeats 5": f"{_DATA}; a benchmark of minutes",
    ".venv/bin/python scripts/benchmark_speed.py --parts memory --hours 2": "writes 2-hour files; 10 minutes",
    ".venv/bin/python scripts/compare_models.py fewshot/models/default models/previous/f0a595192efd06d4 "
    "--dev ../shared/data/dev": f"{_DATA} and 2 minutes (and the clone's git history)",
    ".venv/bin/python scripts/compare_vad.py ../shared/data/dev --speakers 20 --out report-vad": f"{_DATA}; about a minute",
    ".venv/bin/python scripts/benchmark_conversations.py ../shared/data/dev --conversations 50": f"{_DATA}; 5 minutes",
    ".venv/bin/python scripts/tune_svm.py ../shared/data/dev": f"{_DATA}; minutes",
    ".venv/bin/python scripts/calibrate_unknown.py fewshot/models/default --train ../shared/data/train "
    "--dev ../shared/data/dev": f"{_DATA}; rewrites the shipped model's calibration",
    ".venv/bin/python scripts/release_model.py fewshot/models/default --aligners-only --dev ../shared/data/dev "
    "--train ../shared/data/train": f"{_DATA}; 9 minutes, rewrites the shipped aligners",
    ".venv/bin/fewshot export fewshot/models/default --format tflite --int8 --dev ../shared/data/dev "
    "--train ../shared/data/train --replace": "rewrites the shipped LiteRT files (test_export.py exports a copy)",
    ".venv/bin/python scripts/train_extractor.py ../shared/data/train --dev ../shared/data/dev --out models/robust1 "
    "--cache cache/speech": "training: hours",
    ".venv/bin/python scripts/release_model.py models/distill2 --dev ../shared/data/dev --multi-condition "
    "--train ../shared/data/train": "releases a training run's output (models/distill2)",
    ".venv/bin/python scripts/train_extractor.py ../shared/data/train --dev ../shared/data/dev --out models/run1": "training: hours (tests/integration/test_training.py trains a tiny model)",
    ".venv/bin/fewshot export models/run1 --format tflite --int8": "exports the training run above",
    ".venv/bin/python scripts/release_model.py models/run1 --dev ../shared/data/dev --train ../shared/data/train": "releases the training run above",
    ".venv/bin/python scripts/teacher_targets.py ../shared/data/train --cache cache/speech": "the teacher over the training speech: 34 minutes",
    ".venv/bin/fewshot evaluate ../shared/data/dev --out report --cluster auto": f"{_DATA} and a Ray cluster; test_evaluate.py runs evaluate with --cluster local on a small tree",
    ".venv/bin/python scripts/benchmark_corpus.py --evaluate ../shared/data/dev --runs 3": f"{_DATA}; starts Ray nodes, 15 minutes",
    ".venv/bin/python scripts/train_extractor.py ../shared/data/train --dev ../shared/data/dev --out models/distill2 "
    "--cache cache/speech --init models/robust1 --epochs 3 --lr 1e-3 --seed 1 --distill 3.0": "training: 35 minutes",
    ".venv/bin/python scripts/scrape_librivox.py --out corpus --speakers 500 --minutes 10": "downloads from librivox.org and archive.org (tests/integration/data_tools serve them locally)",
    ".venv/bin/python scripts/train_extractor.py corpus/manifest.csv --dev ../shared/data/dev --out models/librivox": "training on the corpus above: hours",
}

#: Exit status and what the output must hold, where it is not 0 and whatever the README's comment says.
NO_MICROPHONE = (2, "error: no microphone to record from: ")
EXPECTED = {
    ".venv/bin/python demo/live.py": NO_MICROPHONE,
    ".venv/bin/python demo/live.py --group home": NO_MICROPHONE,
    ".venv/bin/python demo/live.py --list-devices": NO_MICROPHONE,
    ".venv/bin/fewshot groups upgrade": (0, "every group already uses extractor"),
    ".venv/bin/fewshot groups show family": (0, "  bob: "),
    ".venv/bin/fewshot export --help": (0, "--replace"),
    ".venv/bin/fewshot live --help": (0, "usage: fewshot live"),
    ".venv/bin/fewshot spectrogram ann1.wav -o ann1.png": (0, "wrote ann1.png"),
}
#: Run after the Python block, to check what it did (on LiteRT: the block runs where TensorFlow cannot be imported).
PYTHON_CHECK = (
    "\nassert p.label == 'ann' and not p.is_unknown and len(p.segments) > 0 and E.shape == (2, 192), (p, E.shape)"
    "\nassert ex.backend.name == 'litert', ex.backend.name\nprint('checked')\n"
)
TOLERANCE = 0.05
TIMEOUT_S = 300


# ---------------------------------------------------------------------------- the README, read
def documented_text() -> str:
    """The README, then every page of ``docs/`` in name order: the text whose commands are checked."""
    return "\n".join(p.read_text() for p in [README, *sorted(DOCS.glob("*.md"))])


def readme_commands(text: str) -> list[tuple[str, str, list[str]]]:
    """``(kind, command, expected output lines)`` in the README's order (inline commands last)."""
    fence = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
    out = []
    for m in fence.finditer(text):
        kind, body = m.group(1), m.group(2)
        if kind == "bash":
            for line in body.replace("\\\n", " ").splitlines():
                command, _, comment = line.partition(" # ")
                expect = [comment.strip()[3:]] if comment.strip().startswith("-> ") else []
                out += [("bash", " ".join(c.split()), expect) for c in command.split(" && ") if c.strip()]
        elif kind == "console":
            for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, *lines = chunk.rstrip("\n").split("\n")
                out.append(("console", command.strip(), lines))
        elif kind == "python":
            out.append(("python", body, []))
    prose = fence.sub("", text)
    inline = (" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose))
    out += [("inline", s, []) for s in inline if s.startswith(".venv/bin/") and " " in s]
    return out


def test_readme_is_read_as_intended():
    """The reader finds the blocks (a changed fence would silently drop commands otherwise)."""
    found = readme_commands(documented_text())
    kinds = [k for k, _, _ in found]
    assert {"bash", "console", "python", "inline"} <= set(kinds)
    commands = [c for _, c, _ in found]
    assert ("bash", ".venv/bin/fewshot identify --group family who.wav", ["who.wav: ann (score 0.943)"]) in found
    assert ("bash", ".venv/bin/python -m pytest", []) in found  # the second half of `setup.sh && pytest`
    stale = set(SKIP) - set(commands)
    assert not stale, f"SKIP lists commands the README and docs/ no longer have: {sorted(stale)}"


# ---------------------------------------------------------------------------- comparing output
def _close(expected, actual) -> bool:
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() <= actual.keys()
            and all(_close(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):  # a list the README cut short with "..." is a prefix
        return (
            isinstance(actual, list)
            and len(actual) >= len(expected)
            and all(_close(e, a) for e, a in zip(expected, actual))
        )
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return isinstance(actual, (int, float)) and abs(expected - actual) <= TOLERANCE
    return expected == actual


def same_line(expected: str, actual: str) -> bool:
    """``actual`` says what ``expected`` says, its numbers within :data:`TOLERANCE`."""
    if "..." in expected:
        return _close(json.loads(expected.replace(", ...", "")), json.loads(actual))
    number = r"(-?\d+\.\d+)"
    e, a = re.split(number, expected.strip()), re.split(number, actual.strip())
    return len(e) == len(a) and all(
        x == y if i % 2 == 0 else abs(float(x) - float(y)) <= TOLERANCE for i, (x, y) in enumerate(zip(e, a))
    )


def test_same_line_tolerates_small_numbers_only():
    assert same_line("who.wav: ann (score 0.943)", "who.wav: ann (score 0.951)")
    assert not same_line("who.wav: ann (score 0.943)", "who.wav: bob (score 0.943)")
    assert not same_line("  0.01 -   13.45 s  ann (0.958)", "  0.01 -   14.45 s  ann (0.958)")
    assert same_line('{"a": 1.0, "s": [{"x": 2.0}, ...]}', '{"a": 1.01, "s": [{"x": 2.0}, {"x": 3.0}], "b": 1}')
    assert not same_line('{"a": 1.0, "s": [{"x": 2.0}, ...]}', '{"a": 1.0, "s": []}')


# ---------------------------------------------------------------------------- the static checks of SKIP
def check_statically(command: str) -> None:
    """A skipped command still names a script that exists and options it has (or parses, for ``fewshot``)."""
    argv = shlex.split(command)
    if argv[0] == "bash":
        assert (REPO / argv[1]).is_file(), command
    elif argv[0] == ".venv/bin/fewshot":
        from fewshot.cli import build_parser

        build_parser().parse_args(argv[1:])
    elif argv[:2] == [".venv/bin/python", "-m"]:
        assert argv[2] == "pytest", command
    elif argv[0] == ".venv/bin/ray":
        assert argv[1] == "start" and importlib.util.find_spec("ray") is not None, command
    else:
        script = REPO / argv[1]
        source = script.read_text()
        missing = [o for o in argv[2:] if o.startswith("--") and f'"{o}"' not in source]
        assert not missing, f"{command}: {script.name} has no {missing}"


# ---------------------------------------------------------------------------- running them
@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A folder laid out as a clone (links to this checkout's parts), its data beside it, and an environment."""
    if list(Path("/dev/snd").glob("pcmC*c")):
        pytest.skip("this machine has a capture sound card, which PortAudio always lists: the demo would record")
    root = tmp_path_factory.mktemp("readme")
    folder = root / "fewshot"
    folder.mkdir()
    for name in LINKED:
        (folder / name).symlink_to(REPO / name)
    if (REPO.parent / "shared").exists():
        (root / "shared").symlink_to((REPO.parent / "shared").resolve())
    (root / "client.conf").write_text("autospawn = no\n")
    env = dict(
        os.environ,
        HOME=str(root),
        XDG_RUNTIME_DIR=str(root),
        FEWSHOT_HOME=str(root / "home"),
        PULSE_SERVER=f"unix:{root}/no-such-socket",
        PULSE_CLIENTCONFIG=str(root / "client.conf"),
    )
    env.pop("DISPLAY", None)
    return folder, env


def run(command: str, folder: Path, env: dict) -> subprocess.CompletedProcess:
    """``command`` through the shell, as typed; one that runs over :data:`TIMEOUT_S` is killed with every process
    it started (its own session), then fails the test."""
    with subprocess.Popen(
        command,
        shell=True,
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"{command!r} ran over {TIMEOUT_S} s: give it smaller options, or list it in SKIP with why")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def check(command: str, r: subprocess.CompletedProcess, expected_lines: list[str]) -> None:
    status, holds = EXPECTED.get(command, (0, ""))
    said = f"{command!r} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    assert r.returncode == status, said
    assert "Traceback" not in r.stderr, said
    assert holds in r.stdout + r.stderr, said
    if expected_lines:
        got = r.stdout.rstrip("\n").split("\n")
        assert len(got) == len(expected_lines) and all(map(same_line, expected_lines, got)), (
            f"{command!r} printed\n{r.stdout}\nwhere the README shows\n" + "\n".join(expected_lines)
        )


def advice(stderr: str) -> list[str]:
    """The commands a program printed as advice (its lines indented by two spaces)."""
    return [ln.strip() for ln in stderr.splitlines() if ln.startswith("  ")]


def test_every_readme_command_runs_as_typed(clone):
    folder, env = clone
    done: dict[str, subprocess.CompletedProcess] = {}
    ran = []
    for kind, command, expected in readme_commands(documented_text()):
        if kind == "python":  # as typed, in a process that refuses TensorFlow, Keras, PyTorch and Ray, and quietly
            script = REFUSE_TENSORFLOW + command + PYTHON_CHECK + CHECK_ASKED
            r = run(f"{shlex.quote(str(folder / '.venv/bin/python'))} -c {shlex.quote(script)}", folder, env)
            assert r.returncode == 0 and r.stdout.endswith("checked\n"), r.stderr
            assert r.stderr == "", r.stderr  # no warning of any library
            continue
        if command in SKIP:
            check_statically(command)
            continue
        if command not in done:  # a command the README repeats ran once; its output is checked each time
            done[command] = run(command, folder, env)
            ran.append(command)
        r = done[command]
        check(command, r, expected)
        if r.stderr.startswith(NO_MICROPHONE[1]) and command == ".venv/bin/python demo/live.py":
            followed = advice(r.stderr)
            assert len(followed) == 2, r.stderr
            for line in followed:
                a = run(line, folder, env)
                assert a.returncode == 0 and "Traceback" not in a.stderr, f"advice {line!r}:\n{a.stderr}"
            turns = [ln.split()[4] for ln in a.stdout.splitlines() if re.match(r"\s+\d+\.\d\d - ", ln)]
            assert turns == ["ann", "bob", "ann", "bob"], a.stdout
        if command.endswith("--input meeting.flac --json"):
            turns = [json.loads(ln)["speaker"] for ln in r.stdout.splitlines()]
            assert turns == ["ann", "bob", "ann", "bob"], r.stdout
        if kind == "inline" and "-X importtime" in command:
            assert "scipy.signal" not in r.stderr and "sklearn" not in r.stderr, command
    assert len(ran) >= 20, ran
    # what the commands left in the folder is what .gitignore ignores
    made = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name not in LINKED)
    assert "meeting.rttm" in made and "voices/" in made, made
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(made),
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(ignored) == made, f"not in .gitignore: {sorted(set(made) - set(ignored))}"
