"""The web app's JSON API and its guards, against ``fewshot serve`` running as a real process on loopback.

Also: a server on another address refuses requests without its token, and the
CLI's other commands never import the web stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from synth import SR, conversation, spoken, write_wav
from web_helpers import Server


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    d = tmp_path_factory.mktemp("web-voices")
    talk, reference = conversation([("ann", 4, 0.8), ("bob", 4, 0.8)], voices="espeak")
    return {
        "ann": write_wav(d / "ann.wav", spoken("ann", 12)),
        "bob": write_wav(d / "bob.wav", spoken("bob", 12)),
        "cyd": write_wav(d / "cyd.wav", spoken("cyd", 12)),
        "talk": write_wav(d / "talk.wav", talk),
        "reference": reference,
        "long": write_wav(d / "long.wav", np.zeros(int(70 * SR), np.float32)),
        "not-audio": d / "notes.txt",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory, voices):
    voices["not-audio"].write_text("not a recording\n")
    home = tmp_path_factory.mktemp("web-home")
    (home / "report.html").write_text("<h1>Accuracy</h1><script>alert(1)</script>")
    with Server("--max-upload-mb", "3", "--max-minutes", "1", "--report", home / "report.html", home=home) as s:
        yield s


def post(url, files, **data):
    return httpx.post(url, files=[(k, (p.name, p.read_bytes())) for k, p in files], data=data, timeout=60)


def test_enroll_identify_and_groups_through_the_api(server, voices):
    api = f"{server.base}/api/groups/home"
    # two enrollments through the API and one by the fewshot command, all at once, into the same store
    cli = subprocess.Popen(
        [sys.executable, "-m", "fewshot.cli", "enroll", "--group", "home", "--speaker", "cyd", str(voices["cyd"])],
        env={**os.environ, "FEWSHOT_HOME": str(server.home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda who: post(f"{api}/members/{who}", [("files", voices[who])]), ["ann", "bob"]))
    assert cli.wait(120) == 0, cli.stdout.read()
    for who, r in zip(["ann", "bob"], answers):
        assert r.status_code == 201 and r.json()["name"] == who and r.json()["seconds_used"] > 11, r.text
    again = post(f"{api}/members/bob", [("files", voices["bob"])])
    assert again.status_code == 409 and again.json() == {
        "error": "bob.wav: already enrolled for 'bob' in group 'home'; use --replace to start over"
    }
    r = post(f"{api}/identify", [("file", voices["talk"])])
    assert r.status_code == 200, r.text
    turns = r.json()["turns"]
    assert [t["speaker"] for t in turns] == ["ann", "bob"]
    assert np.allclose([[t["start"], t["end"]] for t in turns], [t[:2] for t in voices["reference"]], atol=0.3)
    assert r.json()["rttm"].splitlines()[1].startswith("SPEAKER talk 1 ")
    groups = httpx.get(f"{server.base}/api/groups").json()
    assert [(g["name"], g["members"]) for g in groups] == [("home", ["ann", "bob", "cyd"])]
    assert [m["name"] for m in httpx.get(api).json()["members"]] == ["ann", "bob", "cyd"]
    assert httpx.delete(f"{api}/members/cyd").json() == {"removed": "cyd", "group": "home"}
    assert [m["name"] for m in httpx.get(api).json()["members"]] == ["ann", "bob"]
    spec = httpx.get(f"{server.base}/openapi.json").json()
    assert "/api/groups/{group}/identify" in spec["paths"] and spec["openapi"].startswith("3.")


def pcm_messages(y, block_s=0.1):
    step = int(block_s * SR)
    return [
        (np.clip(y[i : i + step], -1, 32767 / 32768) * 32768).astype("<i2").tobytes() for i in range(0, len(y), step)
    ]


def test_listen_socket_names_who_speaks(server, voices):
    import soundfile as sf
    from websockets.sync.client import connect

    y, _ = sf.read(voices["talk"], dtype="float32")
    with connect(f"{server.base.replace('http', 'ws')}/api/groups/home/listen", open_timeout=10) as ws:
        assert json.loads(ws.recv(10)) == {"group": "home", "members": ["ann", "bob"], "sr": SR}
        shown, final = [], []
        for block in pcm_messages(y):
            ws.send(block)
            m = json.loads(ws.recv(10))
            final += m["final"]
            if m["current"] and (not shown or shown[-1] != m["current"]["speaker"]):
                shown.append(m["current"]["speaker"])
        ws.send("stop")
        last = json.loads(ws.recv(10))
    assert last["done"] and shown == ["ann", "bob"]
    turns = final + last["final"]
    assert [t["speaker"] for t in turns] == ["ann", "bob"]
    assert np.allclose([[t["start"], t["end"]] for t in turns], [t[:2] for t in voices["reference"]], atol=0.3)


def test_record_socket_warns_of_clipping_and_keeps_too_little_speech_out(server, voices):
    import soundfile as sf
    from websockets.sync.client import connect

    y, _ = sf.read(voices["ann"], dtype="float32")
    loud = np.clip(y[: 3 * SR] * 30, -1, 1)
    with connect(
        f"{server.base.replace('http', 'ws')}/api/groups/home/members/dan/record?seconds=15", open_timeout=10
    ) as ws:
        assert json.loads(ws.recv(10)) == {"target_s": 15.0}
        alerts = set()
        for block in pcm_messages(loud):
            ws.send(block)
            m = json.loads(ws.recv(10))
            alerts.add(m["alert"])
        ws.send("stop")
        last = json.loads(ws.recv(10))
    assert "CLIPPING: move back" in alerts and 2 < m["speech_s"] <= 3.0 and m["seconds"] == 3.0
    assert last == {
        "error": f"only {m['speech_s']:.1f} s of speech heard: 'dan' is not enrolled; record again",
        "again": False,
    }
    assert [m["name"] for m in httpx.get(f"{server.base}/api/groups/home").json()["members"]] == ["ann", "bob"]
    with connect(
        f"{server.base.replace('http', 'ws')}/api/groups/home/members/dan/record?seconds=5", open_timeout=10
    ) as ws:
        assert json.loads(ws.recv(10)) == {"error": "seconds must be between 15 and 35, given '5'"}


@pytest.mark.parametrize(
    "case", ["unknown group", "not audio", "too long", "too large", "no file", "bad name", "wrong method"]
)
def test_errors_are_the_clis_one_line_reasons_with_a_4xx(server, voices, tmp_path, case):
    api = f"{server.base}/api/groups"
    if case == "unknown group":
        r = post(f"{api}/nobody/identify", [("file", voices["talk"])])
        status, error = 404, "no group named 'nobody' (groups: "
    elif case == "not audio":
        r = post(f"{api}/other/members/cyd", [("files", voices["not-audio"])])
        status, error = 400, "notes.txt: unreadable or corrupt audio"
    elif case == "too long":
        r = post(f"{api}/other/members/cyd", [("files", voices["long"])])
        status, error = 400, "long.wav: 1.2 minutes long; this server takes files of up to 1 minutes"
    elif case == "too large":
        big = write_wav(tmp_path / "big.wav", np.zeros(int(100 * SR), np.float32))
        r = post(f"{api}/other/members/cyd", [("files", big)])
        status, error = 413, "the upload is over the server's limit of 3 MB"
    elif case == "no file":
        r = httpx.post(f"{api}/other/members/cyd", data={"replace": "1"})
        status, error = 400, "no file given"
    elif case == "wrong method":
        r = httpx.put(f"{api}/other")
        status, error = 405, "Method Not Allowed"
    else:
        r = post(f"{api}/other/members/%E2%80%AEeve", [("files", voices["ann"])])  # U+202E, a bidi override
        status, error = 400, r"the person name '\u202eeve' holds the invisible or control character U+202E"
    assert r.status_code == status and r.json()["error"].startswith(error), r.text
    assert "\n" not in r.json()["error"] and "Traceback" not in r.text
    assert [g["name"] for g in httpx.get(api).json()] == ["home"]  # nothing was stored


def test_the_report_is_served_without_running_its_scripts(server):
    r = httpx.get(f"{server.base}/report")
    assert r.status_code == 200 and r.text.startswith("<h1>Accuracy</h1>")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")  # its <script> does not run
    assert httpx.get(f"{server.base}/api/info").json()["report"] is True


def test_other_hosts_and_origins_are_refused(server):
    r = httpx.get(f"{server.base}/api/groups", headers={"Host": "attacker.example"})
    assert r.status_code == 403 and "answers to 127.0.0.1:" in r.json()["error"]
    r = httpx.delete(f"{server.base}/api/groups/home", headers={"Origin": "http://attacker.example"})
    assert r.status_code == 403 and r.json() == {"error": "requests from pages of http://attacker.example are refused"}
    assert httpx.get(f"{server.base}/api/groups/home").status_code == 200  # still there


def test_off_loopback_every_request_needs_the_token(tmp_path):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with Server("--host", "0.0.0.0", "--token-file", tmp_path / "token", home=tmp_path) as s:
        token = (tmp_path / "token").read_text().strip()
        assert s.url.endswith(f"/?token={token}") and "share it only with people you trust" in s.log
        base = s.base.replace(s.base.split("//")[1].split(":")[0], "127.0.0.1")
        assert httpx.get(f"{base}/api/groups").status_code == 401
        assert httpx.get(f"{base}/", params={"token": "x" * 32}).status_code == 401
        assert httpx.get(f"{base}/api/groups", headers={"Authorization": f"Bearer {token}"}).json() == []
        page = httpx.get(f"{base}/", params={"token": token})  # a page opened with the token keeps it as a cookie
        assert page.status_code == 200 and f"fewshot_token={token}" in page.headers["set-cookie"]
        with pytest.raises(InvalidStatus):
            connect(f"{base.replace('http', 'ws')}/api/groups/g/listen", open_timeout=10)
        with connect(
            f"{base.replace('http', 'ws')}/api/groups/g/listen",
            open_timeout=10,
            additional_headers={"Authorization": f"Bearer {token}"},
        ) as ws:
            assert json.loads(ws.recv(10))["error"].startswith("no group named 'g'")


def test_other_commands_never_import_the_web_stack(tmp_path):
    code = (
        "import sys\nfrom fewshot.cli import main\nrc = main(['groups'])\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'multipart', "
        "'websockets', 'httpx', 'selenium'))\nprint(web)\nsys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FEWSHOT_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "[]", proc.stdout + proc.stderr


def test_serve_without_the_web_extra_says_what_to_install(tmp_path):
    code = (
        "import sys\nclass Refuse:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('starlette', 'uvicorn'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Refuse())\nfrom fewshot.cli import main\nsys.exit(main(['serve']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FEWSHOT_HOME": str(tmp_path)},
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "error: fewshot serve needs the extra 'web': pip install 'fewshot[web]' (in a clone: "
        ".venv/bin/pip install -e '.[web]')\n"
    )


def test_demo_web_is_fewshot_serve():
    proc = subprocess.run(
        [sys.executable, "demo/web.py", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert (
        proc.returncode == 0 and proc.stdout.startswith("usage: python demo/web.py ") and "--token-file" in proc.stdout
    )
