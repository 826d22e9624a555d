"""The teacher's targets on Ray: one CAM++ per CPU of a private runtime or of a cluster.

Contract
--------
:func:`embed_classes` returns what :func:`fewshot.train.teacher.embed_class`
gives for each class, in class order, computed by a pool of Ray actors that
each load the teacher once (:mod:`fewshot.cluster`: a private runtime on this
machine by default, or the cluster at ``address``). Each class's speech goes
to one actor at a time; an actor lost with its node is restarted and its
class embedded again (``RETRIES`` times), so a lost node costs time, not
targets. Pass it to :func:`fewshot.train.teacher.teacher_targets` as
``embed_classes``.
"""

from __future__ import annotations

import numpy as np

from ..cluster import runtime
from .teacher import Teacher, embed_class

#: Times an actor (and its class in progress) is restarted after its node or process died.
RETRIES = 3


class TeacherActor:
    """A teacher loaded once, with one PyTorch thread, embedding one class per call."""

    def __init__(self) -> None:
        self.teacher = Teacher(threads=1)

    def embed(self, index: int, wave: np.ndarray, window: int, hop: int) -> tuple[int, np.ndarray]:
        return index, embed_class(self.teacher, wave, window=window, hop=hop)


def embed_classes(
    waves, *, window: int, hop: int, progress=None, address: str | None = None, cpus: int | None = None
) -> list[np.ndarray]:
    """Each class's teacher embeddings (see the module contract).

    Parameters
    ----------
    waves : list of np.ndarray [shape=(n,), dtype=int16]
        Each class's speech.
    window, hop : int
        Window and grid step in samples.
    progress : callable, optional
        ``progress(iterable, total=)`` wraps the finished classes.
    address : str, optional
        Ray cluster to join (``"auto"``: the one this machine is in); default a private runtime.
    cpus : int, optional
        CPUs of a private runtime.

    Returns
    -------
    list of np.ndarray [shape=(n_windows, 192), dtype=float16]
    """
    if not waves:
        return []
    with runtime(address, cpus=cpus) as ray:
        from ray.util import ActorPool

        size = max(1, min(len(waves), int(ray.cluster_resources().get("CPU", 1))))
        actor = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(TeacherActor)
        pool = ActorPool([actor.remote() for _ in range(size)])
        done = pool.map_unordered(lambda a, i: a.embed.remote(i, waves[i], window, hop), range(len(waves)))
        out: list = [None] * len(waves)
        for index, targets in progress(done, total=len(waves)) if progress else done:
            out[index] = targets
    return out
