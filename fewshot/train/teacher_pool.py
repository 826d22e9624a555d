"""The teacher's targets on Ray: one CAM++ per CPU of a private runtime or of a cluster.

Contract
--------
:func:`embed_classes` returns what :func:`fewshot.train.teacher.embed_class`
gives for each class, in class order, computed by a pool of Ray actors that
each load the teacher once (:mod:`fewshot.cluster`: a private runtime on this
machine by default, or the cluster at ``address``). Each class's speech goes
to one actor at a time; an actor lost with its node is restarted and its
class embedded again (``RETRIES`` times), so a lost node costs time, not
targets. When no class is left to hand out, an idle actor also embeds a
class still running elsewhere (once), the first answer counting: a class
held by an actor that cannot come back (no CPU left free for its restart)
does not stall the run. Pass it to
:func:`fewshot.train.teacher.teacher_targets` as ``embed_classes``.
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
        size = max(1, min(len(waves), int(ray.cluster_resources().get("CPU", 1))))
        actor = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(TeacherActor)
        done = _first_answers(ray, [actor.remote() for _ in range(size)], waves, window=window, hop=hop)
        out: list = [None] * len(waves)
        for index, targets in progress(done, total=len(waves)) if progress else done:
            out[index] = targets
    return out


def _first_answers(ray, actors: list, waves, *, window: int, hop: int):
    """``(index, targets)`` of every class once, as the first of its copies comes back (see the module contract).

    Raises
    ------
    RuntimeError
        When every actor is gone for good with classes left.
    """
    from ray.exceptions import RayActorError

    todo, idle = list(range(len(waves)))[::-1], list(actors)
    running: dict = {}  # task -> (actor, class)
    copies, answered = [0] * len(waves), [False] * len(waves)
    while not all(answered):
        while idle:
            spare = [i for _, i in running.values() if copies[i] == 1 and not answered[i]]
            if not todo and not spare:
                break
            i = todo.pop() if todo else spare[0]
            a = idle.pop()
            running[a.embed.remote(i, waves[i], window, hop)] = (a, i)
            copies[i] += 1
        if not running:
            raise RuntimeError(f"every teacher actor is gone, with {answered.count(False)} classes left")
        (task,), _ = ray.wait(list(running), num_returns=1)
        a, i = running.pop(task)
        try:
            index, targets = ray.get(task)
        except RayActorError:  # gone for good, after its restarts: its class goes back to the queue
            copies[i] -= 1
            if not answered[i] and not copies[i]:
                todo.append(i)
            continue
        idle.append(a)
        if not answered[index]:
            answered[index] = True
            yield index, targets
