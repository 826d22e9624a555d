"""The corpus builder on a real two-node Ray cluster on 127.0.0.1 (``pytest -m cluster -n 0``).

Two ``ray start`` nodes of one CPU each build the fixture catalogue: the
manifest equals the single-machine build's, a second run downloads nothing,
and a run in which a node loses its raylet while its download tasks wait
behind a stalled download still ends with the same manifest, the lost tasks
run again on the other nodes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fewshot.datasets import validate_manifest
from fixture_server import FixtureServer

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]


def leftovers(root):
    return [p for p in root.rglob("*") if p.name.endswith((".part", ".tmp", ".old"))]


@pytest.fixture(scope="module")
def single_machine(site, tmp_path_factory, scrape_main, scrape_argv):
    """The manifest of a build on a private runtime of this machine."""
    out = tmp_path_factory.mktemp("single")
    with FixtureServer(site) as srv:
        assert scrape_main(scrape_argv(srv, out)) == 0
    return (out / "manifest.csv").read_text()


def build(cluster, argv, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "scrape_librivox.py"), *argv, "--cluster", cluster.address],
        cwd=REPO,
        env=cluster.env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def retried(printed: str) -> dict[str, int]:
    line = re.search(r"Tasks retried after a lost node or worker: (.*)", printed).group(1)
    return {stage: int(n) for stage, n in (part.split() for part in line.split(", "))}


def test_two_nodes_build_the_single_machine_manifest(ray_cluster, single_machine, server, scrape_argv, tmp_path):
    out = tmp_path / "corpus"
    proc = build(ray_cluster, scrape_argv(server, out))
    printed, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert (out / "manifest.csv").read_text() == single_machine
    # where the tasks run is Ray's choice: on a catalogue this small it may keep them all on one node, so this
    # test checks the build, and test_a_node_lost_mid_run_changes_nothing that work moves between nodes
    assert re.search(r"tasks ran on [12] nodes?\b", printed) and "Downloads this run: 8 files" in printed
    assert server.peak_downloads == 1  # the per-host limit holds for the whole cluster
    assert not leftovers(out)

    server.reset()
    proc = build(ray_cluster, scrape_argv(server, out))
    printed, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert server.total() == 0 and "Downloads this run: 0 files" in printed
    assert (out / "manifest.csv").read_text() == single_machine


def test_a_node_lost_mid_run_changes_nothing(ray_cluster, single_machine, site, server, scrape_argv, tmp_path):
    doomed = ray_cluster.add_node()  # a third node, so that the cluster keeps two for the tests after this one
    out = tmp_path / "corpus"
    server.add_fault(site.chapter_path(990), "stall")
    proc = build(ray_cluster, scrape_argv(server, out))
    try:
        assert server.stall_reached.wait(120), "the run never reached the stalled download"
        # every narrator's download task has started (spread over the nodes) once it asked for its metadata
        items = [f"/metadata/fixture_book_{b}" for b in (990, 1000, 1001, 1002)]
        deadline = time.monotonic() + 120
        while not all(server.counts[i] for i in items) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(ray_cluster.raylet(doomed), signal.SIGKILL)
        server.release.set()
        printed, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    ray_cluster.wait_for(2, 120, exactly=True)  # the lost node counted dead before the next test sizes its pool
    assert proc.returncode == 0, err
    assert (out / "manifest.csv").read_text() == single_machine
    assert re.search(r"tasks ran on [23] nodes", printed), printed + err
    assert server.peak_downloads == 1
    assert retried(printed)["download"] + retried(printed)["process"] >= 1, printed
    assert {r.speaker_id for r in validate_manifest(out / "manifest.csv")} == {"500", "100", "101", "102"}
    assert not leftovers(out)
