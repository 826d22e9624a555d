"""The protocol's embeddings on Ray: chunks of speakers embedded by tasks across a cluster.

Contract
--------
:func:`embed_protocol_on_ray` returns what
:func:`fewshot.eval.benchmark.embed_protocol_chunked` returns for the same
extractor and speakers (embedded by the same
:func:`fewshot.eval.protocol.embed_protocol`, in chunks small enough to give
every CPU work, so the same embeddings up to float noise from batching), in
speaker order, computed by one Ray task per chunk on the
runtime of :mod:`fewshot.cluster` (a private runtime on this machine, or the
cluster at ``address``; one already running in this process is used as it is).

A task loads the extractor from its model directory, on the backend and
with the batch size the caller's extractor has, once per worker process
(later chunks reuse it), and refuses a directory whose model id differs from
the caller's. So every node needs the model directory at the same path
(the shipped model is inside the installation). An extractor without a model
directory (the MFCC baseline) is sent to the workers instead (pickled). A task whose
worker or node dies is run again elsewhere (``RETRIES`` times, Ray's
``max_retries``); an error raised by the embedding itself is not retried and
is raised here. At most two chunks per CPU, and about half the object store,
are in flight at a time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..cluster import ClusterError, cause, runtime
from ..errors import IncompatibleModelError
from ..model.extractor import Extractor
from .benchmark import merge_embedded
from .protocol import EmbeddedSpeakers, ProtocolSpeaker, embed_protocol

#: Times a chunk is run again after its worker process or node died.
RETRIES = 3
#: Chunks in flight per CPU of the cluster.
IN_FLIGHT_PER_CPU = 2
#: Most speakers per task (the chunk of :func:`fewshot.eval.benchmark.embed_protocol_chunked`).
MAX_CHUNK = 8

#: This worker process's extractors, by (model directory, backend, batch size).
_LOADED: dict[tuple, Extractor] = {}


def _recipe(extractor):
    """How a worker gets ``extractor``: its model directory, backend, batch size and id, or the object itself."""
    if isinstance(extractor, Extractor) and extractor.path is not None:
        return (str(extractor.path), extractor.backend.name, extractor.batch_size, extractor.model_id)
    return extractor


def _extractor(recipe):
    """The extractor a :func:`_recipe` names, loaded once per process and checked against the caller's id."""
    if not isinstance(recipe, tuple):
        return recipe
    path, backend, batch_size, model_id = recipe
    key = (path, backend, batch_size)
    if key not in _LOADED:
        loaded = Extractor.load(path, backend=backend, batch_size=batch_size)
        if loaded.model_id != model_id:
            raise IncompatibleModelError(
                f"{path}: the model here is {loaded.model_id}, not {model_id} as where "
                "the evaluation runs; every node needs the same model directory"
            )
        _LOADED[key] = loaded
    return _LOADED[key]


def _pack(speaker: ProtocolSpeaker):
    """``(speaker without enrollment, longest enrollment, {T: length})`` when every enrollment is a prefix of
    the longest (as :func:`fewshot.eval.protocol.prepare_protocol` cuts them), so the speech travels once;
    else ``(speaker, None, None)``."""
    if not speaker.enroll:
        return speaker, None, None
    longest = max(speaker.enroll.values(), key=len)
    if not all(np.array_equal(y, longest[: len(y)]) for y in speaker.enroll.values()):
        return speaker, None, None
    return dataclasses.replace(speaker, enroll={}), longest, {T: len(y) for T, y in speaker.enroll.items()}


def _unpack(packed) -> ProtocolSpeaker:
    speaker, longest, lengths = packed
    if longest is None:
        return speaker
    return dataclasses.replace(speaker, enroll={T: longest[:n] for T, n in lengths.items()})


def _nbytes(packed) -> int:
    speaker, longest, _ = packed
    return sum(y.nbytes for y in (*speaker.enroll.values(), *speaker.tests)) + (
        0 if longest is None else longest.nbytes
    )


def embed_chunk(recipe, chunk: list, copies: bool) -> EmbeddedSpeakers:
    """A Ray task's work: :func:`embed_protocol` of one packed chunk of speakers."""
    return embed_protocol(_extractor(recipe), [_unpack(p) for p in chunk], copies=copies)


def embed_protocol_on_ray(
    extractor,
    speakers: list[ProtocolSpeaker],
    *,
    chunk: int | None = None,
    copies: bool = False,
    progress=None,
    address: str | None = None,
    cpus: int | None = None,
) -> EmbeddedSpeakers:
    """:func:`fewshot.eval.benchmark.embed_protocol_chunked` as Ray tasks (see the module contract).

    Parameters
    ----------
    extractor : Extractor or object with ``embed``
        Loaded from a model directory (every node loads the same one), or
        any picklable object with the extractor's ``embed``.
    speakers : list of ProtocolSpeaker
    chunk : int, optional
        Speakers per task; default as many as give each CPU of the cluster two
        tasks, at most ``MAX_CHUNK``.
    copies : bool
        Also embed the degraded enrollment copies (multi-condition enrollment).
    progress : callable, optional
        ``progress(iterable, total=)`` wraps the finished chunks, wherever they ran.
    address : str, optional
        Ray cluster to join (``"auto"``: the one this machine is in); default a private runtime.
    cpus : int, optional
        CPUs of a private runtime.

    Returns
    -------
    EmbeddedSpeakers
        In the order of ``speakers``.

    Raises
    ------
    ImportError
        When Ray is not installed.
    fewshot.cluster.ClusterError
        When the cluster cannot be joined.
    """
    if not speakers:
        return embed_protocol(extractor, [], copies=copies)
    with runtime(address, cpus=cpus) as ray:
        task = ray.remote(num_cpus=1, max_retries=RETRIES)(embed_chunk)
        recipe = ray.put(_recipe(extractor))
        resources = ray.cluster_resources()
        width = max(1, IN_FLIGHT_PER_CPU * int(resources.get("CPU", 1)))
        budget = resources.get("object_store_memory", 0) / 2
        chunk = chunk or min(MAX_CHUNK, -(-len(speakers) // width))
        chunks = [[_pack(s) for s in speakers[i : i + chunk]] for i in range(0, len(speakers), chunk)]
        out: list = [None] * len(chunks)
        done = _finished(ray, task, recipe, chunks, copies, width=width, budget=budget)
        for index, emb in progress(done, total=len(chunks)) if progress else done:
            out[index] = emb
    return merge_embedded(out)


def _finished(ray, task, recipe, chunks, copies, *, width: int, budget: float):
    """``(index, embeddings)`` of each chunk as it finishes, with at most ``width`` chunks and about
    ``budget`` bytes of speech in flight (always at least one chunk)."""
    pending, sizes, following = {}, [sum(_nbytes(p) for p in c) for c in chunks], 0
    while following < len(chunks) or pending:
        while following < len(chunks) and (
            not pending
            or (len(pending) < width and sum(sizes[i] for i in pending.values()) + sizes[following] <= budget)
        ):
            pending[task.remote(recipe, chunks[following], copies)] = following
            following += 1
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ref)
        try:
            emb = ray.get(ref)
        except ray.exceptions.RayError as exc:
            if (inner := cause(exc)) is not exc:
                raise inner from None  # the embedding's own error, unwrapped from Ray's
            raise ClusterError(
                f"speakers {index * len(chunks[0]) + 1}-{index * len(chunks[0]) + len(chunks[index])} "
                f"were not embedded after {RETRIES} retries: {str(exc).splitlines()[0]}"
            ) from None
        yield index, emb
