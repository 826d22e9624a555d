"""The Ray runtime that the data-side jobs run on (corpus builder, teacher targets).

Contract
--------
:func:`runtime` joins the Ray cluster at ``address`` (``"auto"``: the cluster
this machine is part of) or, without an address, starts a private Ray runtime
on this machine that ends with the ``with`` block; it never joins a cluster it
was not asked to join. In a process where Ray is already running, that
runtime is used as it is. Ray comes with the ``data`` extra and is imported
here lazily: ``identify``, ``enroll``, ``groups`` and the demo never import
this module.

Every node of a cluster needs the same installation of fewshot (the same
virtual environment path) and the output folders on a filesystem all nodes
share at the same path.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

INSTALL_HINT = "install the 'data' extra: pip install 'fewshot[data]'"
#: Object store of a private runtime: the jobs pass paths and small records, never audio.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
#: Seconds to wait for a named head node to accept a connection (Ray itself keeps trying for minutes).
CONNECT_TIMEOUT_S = 10.0


class ClusterError(RuntimeError):
    """The Ray runtime could not be started or the cluster could not be joined."""


def require_ray():
    """The ``ray`` module, or an ``ImportError`` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"Ray is not installed ({exc}); {INSTALL_HINT}") from exc
    return ray


def default_cpus() -> int:
    """CPUs a private runtime uses by default: all but one, at most four, at least one."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


@contextmanager
def runtime(address: str | None = None, *, cpus: int | None = None) -> Iterator[object]:
    """Ray, connected to a cluster or running privately on this machine, for the ``with`` block.

    Parameters
    ----------
    address : str, optional
        ``HOST:PORT`` of a cluster's head node, or ``"auto"`` for the cluster
        this machine belongs to (started with ``ray start``). ``None`` starts a
        private runtime on this machine.
    cpus : int, optional
        CPUs of a private runtime (default :func:`default_cpus`); ignored when
        joining a cluster, whose nodes say what they offer.

    Yields
    ------
    module
        The ``ray`` module, initialised.

    Raises
    ------
    ImportError
        When Ray is not installed.
    ClusterError
        When the cluster cannot be joined or the runtime does not start.
    """
    ray = require_ray()
    if address and address != "auto":
        _check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    common = {"logging_level": logging.WARNING, "log_to_driver": False, "include_dashboard": False}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(
                address="local",
                num_cpus=max(1, cpus or default_cpus()),
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                **common,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray runtime"
        raise ClusterError(f"could not start or join {where}: {str(exc).splitlines()[0]}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise ClusterError(
            f"no Ray head node answers at {address} ({exc}); start one with "
            f"'ray start --head' or name another with --cluster HOST:PORT"
        ) from None


def cause(exc: BaseException) -> BaseException:
    """The exception a remote task raised, unwrapped from Ray's ``RayTaskError``."""
    inner = getattr(exc, "cause", None)
    return inner if isinstance(inner, BaseException) else exc


def here(ray):
    """Scheduling that keeps an actor on this (the driver's) node, which lives as long as the run."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
