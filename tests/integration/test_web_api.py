"""The web app's JSON API and its guards, against ``fewshot serve`` running as a real process on loopback.

Also: a server on another address refuses requests without its token, and the
CLI's other commands never import the web stack.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest

from synth import SR, conversation, spoken, write_wav
from web_helpers import Server


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    d = tmp_path_factory.mktemp("web-voices")
    talk, reference = conversation([("ann", 4, 0.8), ("bob", 4, 0.8)], voices="espeak")
    return {"ann": write_wav(d / "ann.wav", spoken("ann", 12)), "bob": write_wav(d / "bob.wav", spoken("bob", 12)),
            "talk": write_wav(d / "talk.wav", talk), "reference": reference,
            "long": write_wav(d / "long.wav", np.zeros(int(70 * SR), np.float32)),
            "not-audio": d / "notes.txt"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, voices):
    voices["not-audio"].write_text("not a recording\n")
    with Server("--max-upload-mb", "3", "--max-minutes", "1", home=tmp_path_factory.mktemp("web-home")) as s:
        yield s


def post(url, files, **data):
    return httpx.post(url, files=[(k, (p.name, p.read_bytes())) for k, p in files], data=data, timeout=60)


def test_enroll_identify_and_groups_through_the_api(server, voices):
    api = f"{server.base}/api/groups/home"
    r = post(f"{api}/members/ann", [("files", voices["ann"])])
    assert r.status_code == 201 and r.json()["name"] == "ann" and r.json()["seconds_used"] > 11, r.text
    assert post(f"{api}/members/bob", [("files", voices["bob"])]).status_code == 201
    again = post(f"{api}/members/bob", [("files", voices["bob"])])
    assert again.status_code == 409 and again.json() == {
        "error": "bob.wav: already enrolled for 'bob' in group 'home'; use --replace to start over"}
    r = post(f"{api}/identify", [("file", voices["talk"])])
    assert r.status_code == 200, r.text
    turns = r.json()["turns"]
    assert [t["speaker"] for t in turns] == ["ann", "bob"]
    assert np.allclose([[t["start"], t["end"]] for t in turns], [t[:2] for t in voices["reference"]], atol=0.3)
    assert r.json()["rttm"].splitlines()[1].startswith("SPEAKER talk 1 ")
    assert httpx.get(f"{server.base}/api/groups").json() == [
        {"name": "home", "members": ["ann", "bob"], "extractor": r.json().get("extractor", httpx.get(api).json()[
            "extractor"])}]
    assert [m["name"] for m in httpx.get(api).json()["members"]] == ["ann", "bob"]
    assert httpx.delete(f"{api}/members/bob").json() == {"removed": "bob", "group": "home"}
    assert [m["name"] for m in httpx.get(api).json()["members"]] == ["ann"]
    spec = httpx.get(f"{server.base}/openapi.json").json()
    assert "/api/groups/{group}/identify" in spec["paths"] and spec["openapi"].startswith("3.")


@pytest.mark.parametrize("case", ["unknown group", "not audio", "too long", "too large", "no file", "bad name"])
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
    else:
        r = post(f"{api}/other/members/%E2%80%AEeve", [("files", voices["ann"])])  # U+202E, a bidi override
        status, error = 400, r"the person name '\u202eeve' holds the control character U+202E"
    assert r.status_code == status and r.json()["error"].startswith(error), r.text
    assert "\n" not in r.json()["error"] and "Traceback" not in r.text
    assert "other" not in [g["name"] for g in httpx.get(f"{api}").json()]  # nothing was stored


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
        with connect(f"{base.replace('http', 'ws')}/api/groups/g/listen", open_timeout=10,
                     additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert json.loads(ws.recv(10))["error"].startswith("no group named 'g'")


def test_other_commands_never_import_the_web_stack(tmp_path):
    code = ("import sys\nfrom fewshot.cli import main\nrc = main(['groups'])\n"
            "web = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'multipart', "
            "'websockets', 'httpx', 'selenium'))\nprint(web)\nsys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "FEWSHOT_HOME": str(tmp_path)})
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "[]", proc.stdout + proc.stderr
