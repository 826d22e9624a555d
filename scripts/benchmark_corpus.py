"""Narrators per minute of the corpus builder (or, with --evaluate, evaluate's embedding) on one and on two Ray nodes.

Serves a stand-in for the LibriVox catalogue and archive.org on 127.0.0.1
(``tests/integration/data_tools/fixture_server.py``: synthetic narrators,
every answer delayed by ``--latency-ms``), then builds the same corpus from
scratch on a Ray cluster of one node with ``--cpus`` CPUs and on one of two
nodes with half as many each (``ray start`` processes on this machine, the
same total CPUs), and prints the narrator stage's throughput (downloads and
processing; starting the nodes and reading the catalogue are not timed) and
the ratio. Run from the repository (it reads the stand-in from ``tests/``).

With ``--evaluate DEV`` it measures instead the embedding of ``fewshot
evaluate`` on the speaker-per-folder set DEV (the protocol's speech loaded
once, 15 s of enrollment, the shipped model as ``identify`` runs it): in this
process, as ``fewshot evaluate`` does by default, then as ``--cluster`` does
on the same two clusters (each run a new driver, so its worker processes
start and load the model, as a new ``fewshot evaluate --cluster`` does), and
prints speakers and seconds of speech embedded per second, the median of
``--runs`` runs, and how far the embeddings are from those of one process.

Example
-------
    python scripts/benchmark_corpus.py --speakers 16 --latency-ms 150 --request-interval 0.2
    python scripts/benchmark_corpus.py --evaluate ../shared/data/dev --runs 3
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAND_IN = REPO / "tests" / "integration" / "data_tools"


def _local_cluster():
    spec = importlib.util.spec_from_file_location("local_cluster", STAND_IN / "local_cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LocalCluster


def serve(args, env) -> tuple[subprocess.Popen, list[str]]:
    """Start the stand-in server; return it and the builder's address options."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(STAND_IN / "fixture_server.py"),
            "--port",
            "0",
            "--books",
            str(args.books),
            "--chapters",
            "2",
            "--chapter-seconds",
            str(args.chapter_seconds),
            "--latency-ms",
            str(args.latency_ms),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, proc.stdout.readline().split()


def build(cluster, address: list[str], out: Path, args) -> dict:
    argv = [
        sys.executable,
        str(REPO / "scripts" / "scrape_librivox.py"),
        "--out",
        str(out),
        "--speakers",
        str(args.speakers),
        "--minutes",
        str(args.chapter_seconds * 2 / 60 * 0.9),
        *address,
        "--request-interval",
        str(args.request_interval),
        "--retry-backoff",
        "0",
        "--page-size",
        "50",
        "--no-progress",
        "--cluster",
        cluster.address,
    ]
    r = subprocess.run(argv, env=cluster.env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"build failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    m = re.search(r"Throughput: (\d+) narrators downloaded and processed in ([\d.]+) s .*tasks ran on (\d+)", r.stdout)
    cost = re.search(r"\((\d+) s per hour of audio\)", r.stdout)
    return {
        "narrators": int(m.group(1)),
        "seconds": float(m.group(2)),
        "nodes_used": int(m.group(3)),
        "cpu_s_per_audio_hour": int(cost.group(1)),
    }


def bench_evaluate(args, LocalCluster, path: str) -> int:
    """Speakers and seconds of speech per second of evaluate's embedding, in one process and on 1 and 2 nodes."""
    import numpy as np

    from fewshot.config import ClassifierConfig
    from fewshot.eval.benchmark import embed_as_enrolled, embed_protocol_chunked
    from fewshot.eval.embed_pool import embed_protocol_on_ray
    from fewshot.eval.protocol import prepare_protocol
    from fewshot.model.extractor import load_extractor

    dev = Path(args.evaluate)
    if not dev.is_dir():
        print(f"error: {dev}: no such folder (the dev set, e.g. ../shared/data/dev, is missing)", file=sys.stderr)
        return 2
    speakers = prepare_protocol(dev, enroll_seconds=(15.0,))
    ex = load_extractor(args.model)
    cc = ClassifierConfig.of_model(ex)
    speech_s = sum(len(y) for s in speakers for y in (*s.enroll.values(), *s.tests)) / ex.feature_config.sr
    copies = "; its degraded copies are embedded too, not counted" if cc.multi_condition else ""
    print(
        f"{dev}: {len(speakers)} speakers, {speech_s:.0f} s of speech (15 s of enrollment{copies}, and the test "
        f"pieces); model {ex.model_id} on {ex.backend.name}; median of {args.runs} run(s)",
        flush=True,
    )

    def measure(label, embed):
        times, out = [], None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            out = embed_as_enrolled(ex, speakers, cc, embed=embed)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        print(
            f"{label}: {t:.1f} s = {len(speakers) / t:.2f} speakers/s, {speech_s / t:.0f} s of speech/s "
            f"(runs: {', '.join(f'{x:.1f}' for x in times)} s)",
            flush=True,
        )
        return t, out

    one, reference = measure("in one process (fewshot evaluate)", embed_protocol_chunked)
    results = {}
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")  # the clusters' loopback setting
    for nodes in (1, 2):
        with LocalCluster(env={"PYTHONPATH": path}) as cluster:
            cluster.start(nodes=nodes, cpus=args.cpus // nodes)
            label = f"Ray, {nodes} node{'s' if nodes > 1 else ''} x {args.cpus // nodes} CPUs (--cluster ADDRESS)"
            results[nodes], emb = measure(label, functools.partial(embed_protocol_on_ray, address=cluster.address))
        gap = max(
            float(np.abs(a - b).max())
            for a, b in zip([*emb.tests, *emb.enroll[15.0]], [*reference.tests, *reference.enroll[15.0]])
        )
        print(f"  largest difference from one process's embeddings: {gap:.2g}", flush=True)
    print(
        f"ratio to one process: 1 node {one / results[1]:.2f}, 2 nodes {one / results[2]:.2f} "
        f"(same {args.cpus} CPUs in all)"
    )
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    p.add_argument("--speakers", type=int, default=16, help="narrators built per run (default 16)")
    p.add_argument("--books", type=int, default=40, help="books in the stand-in catalogue (default 40)")
    p.add_argument("--chapter-seconds", type=float, default=20.0, help="length of each of 2 chapters (default 20)")
    p.add_argument("--latency-ms", type=float, default=150.0, help="delay of every answer (default 150)")
    p.add_argument(
        "--request-interval",
        type=float,
        default=0.2,
        help="seconds between requests to one host, cluster-wide (default 0.2)",
    )
    p.add_argument("--cpus", type=int, default=2, help="CPUs in all, split over the nodes (default 2)")
    p.add_argument(
        "--evaluate",
        metavar="DEV",
        help="measure evaluate's embedding on the speaker-per-folder set DEV instead of the corpus builder",
    )
    p.add_argument("--model", help="with --evaluate: the extractor model directory (default: the shipped model)")
    p.add_argument("--runs", type=int, default=1, help="with --evaluate: runs of each, median reported (default 1)")
    args = p.parse_args(argv)
    if args.cpus < 2 or args.cpus % 2:
        p.error("--cpus must be even and at least 2")
    path = os.pathsep.join([str(REPO), str(REPO / "tests"), str(STAND_IN), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    LocalCluster = _local_cluster()
    if args.evaluate:
        return bench_evaluate(args, LocalCluster, path)
    server, address = serve(args, env)
    results = {}
    try:
        for nodes in (1, 2):
            with LocalCluster(env={"PYTHONPATH": path}) as cluster, tempfile.TemporaryDirectory() as tmp:
                cluster.start(nodes=nodes, cpus=args.cpus // nodes)
                results[nodes] = r = build(cluster, address, Path(tmp) / "corpus", args)
                rate = r["narrators"] / (r["seconds"] / 60)
                print(
                    f"{nodes} node{'s' if nodes > 1 else ''} x {args.cpus // nodes} CPUs: {r['narrators']} narrators "
                    f"in {r['seconds']:.1f} s = {rate:.1f} narrators/min (tasks ran on {r['nodes_used']}; processing "
                    f"{r['cpu_s_per_audio_hour']} CPU-s per hour of audio)",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(10)
    one, two = (results[n]["narrators"] / results[n]["seconds"] for n in (1, 2))
    print(
        f"ratio 2 nodes / 1 node: {two / one:.2f} (latency {args.latency_ms:g} ms, "
        f"{args.request_interval:g} s between requests to one host, one download at a time per host)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
