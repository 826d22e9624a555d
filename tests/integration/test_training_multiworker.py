"""Two training workers on loopback (tf.distribute MultiWorkerMirroredStrategy) end with the same weights."""

import json
import os
import socket
import subprocess

import numpy as np
from test_training import corpus, train_cmd, weights  # noqa: F401  (the corpus fixture)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_on_loopback_end_with_the_same_weights(corpus, tmp_path):  # noqa: F811
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    out = tmp_path / "mw"
    procs = []
    for i in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}),
        }
        procs.append(
            subprocess.Popen(
                train_cmd(corpus, out, "--epochs", "1", "--strategy", "multiworker", "--no-whiten"),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    chief, other = weights(out), weights(out / ".worker1")
    for wa, wb in zip(chief, other):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
