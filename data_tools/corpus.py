"""The corpus builder: catalogue, selection, downloads, processing, manifest, as Ray tasks.

Contract
--------
:func:`run_scrape` turns a :class:`ScrapeConfig` into ``<out>/manifest.csv``
and returns a :class:`ScrapeSummary`. The stages run as Ray tasks
(:mod:`fewshot.cluster`: a private runtime on this machine, or the cluster
``cfg.cluster`` names): one task reads the catalogue, then per narrator one
download task (archive metadata, the chapters, md5-verified) and one
processing task (decode, trim, drop pauses, cut, write). Per-host politeness
is booked in one :mod:`~data_tools.gate` actor for the whole cluster. The
driver (this process) makes the selection, schedules, and writes the manifest.

Faults: a task on a node that dies is run again elsewhere (``TASK_RETRIES``
times); every file has one owner (a chapter belongs to one narrator's
download task, a narrator's folder to its processing task), and each file
appears only complete (``.part`` renamed after its md5, folders built under a
temporary name per attempt and renamed). The run can be stopped at any point
and run again: catalogue pages and item metadata are cached, the selection is
kept in ``state.json``, downloads resume from ``.part`` files, and narrators
whose folder is complete are not touched, so the final manifest is the same
as after an uninterrupted run. Layout of ``<out>`` (on a filesystem that all
nodes share, at the same path)::

    cache/catalogue/  cache/metadata/      cached API answers
    downloads/<identifier>/<name>.mp3      verified chapter MP3s
    audio/<reader_id>/<reader_id>-<book_id>-<nnnn>.wav (+ segments.json)
    state.json  manifest.csv
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from fewshot.cluster import cause, here, runtime
from fewshot.datasets import ManifestRow, write_manifest
from fewshot.persistence import atomic_write_json, read_json

from .gate import cluster_gate
from .librivox import Book, book_from_dict
from .process import ProcessSettings, load_done, narrator_dir
from .selection import NarratorPlan, Selection, select_narrators
from .settings import Layout, ScrapeConfig
from .splits import apply_splits
from .summary import Ledger, ScrapeSummary
from .tasks import PROGRESS_POLL_S, TASK_RETRIES, build_narrators, read_catalogue

logger = logging.getLogger(__name__)

STATE_VERSION = 2


def _selection_params(cfg: ScrapeConfig) -> dict:
    return {
        "api_base": cfg.api_base,
        "page_size": cfg.page_size,
        "speakers": cfg.speakers,
        "minutes": cfg.minutes,
        "language": cfg.language,
        "exclude": sorted(cfg.exclude_speakers),
    }


def load_or_select(cfg: ScrapeConfig, layout: Layout, read_books) -> Selection:
    """The selection kept in ``state.json``, or a new one from the books ``read_books()`` returns.

    Parameters
    ----------
    cfg : ScrapeConfig
        Run settings; a change in the selection settings makes a new selection.
    layout : Layout
        Paths of the output folder.
    read_books : callable
        Returns the catalogue's books (called only when no kept selection fits).

    Returns
    -------
    Selection
        The narrators to build, with skip counts.
    """
    params = _selection_params(cfg)
    state = read_json(layout.state)
    if isinstance(state, dict) and state.get("version") == STATE_VERSION and state.get("params") == params:
        plans = [
            NarratorPlan(n["reader_id"], n["display_name"], [book_from_dict(b) for b in n["books"]])
            for n in state["narrators"]
        ]
        return Selection(plans, state["eligible"], state["books_seen"], Counter(state["skipped"]))
    selection = select_narrators(read_books(), cfg.speakers, cfg.minutes * 60, cfg.language, cfg.exclude_speakers)
    atomic_write_json(
        layout.state,
        {
            "version": STATE_VERSION,
            "params": params,
            "eligible": selection.eligible,
            "books_seen": selection.books_seen,
            "skipped": dict(selection.skipped),
            "narrators": [
                {"reader_id": p.reader_id, "display_name": p.display_name, "books": [b.to_dict() for b in p.books]}
                for p in selection.narrators
            ],
        },
    )
    return selection


def _clean_stale(audio: Path) -> None:
    if audio.is_dir():
        for path in audio.iterdir():
            if path.name.startswith(".") and path.name.endswith((".tmp", ".old")) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def run_scrape(cfg: ScrapeConfig) -> ScrapeSummary:
    """Build (or finish building) the corpus described by ``cfg``; see the module contract.

    Raises
    ------
    CatalogueError
        When a catalogue page is unusable.
    HttpError
        When the catalogue cannot be read.
    ClusterError
        When the Ray runtime does not start or the cluster cannot be joined.
    """
    layout = Layout(cfg.out)
    layout.root.mkdir(parents=True, exist_ok=True)
    _clean_stale(layout.audio)
    settings = ProcessSettings(
        max_seconds=cfg.minutes * 60, segment_seconds=cfg.segment_seconds, spectrograms=cfg.spectrograms
    )
    with runtime(cfg.cluster, cpus=cfg.workers) as ray:
        gate = cluster_gate(ray, slots=cfg.downloads_per_host)
        ledger = ray.remote(num_cpus=0)(Ledger).options(scheduling_strategy=here(ray)).remote()

        def read_books() -> list[Book]:
            task = ray.remote(read_catalogue).options(num_cpus=0, max_retries=TASK_RETRIES)
            ref = task.remote(cfg, gate, ledger)
            with tqdm(desc="catalogue", unit="page", disable=not cfg.progress) as bar:
                while cfg.progress and not ray.wait([ref], timeout=PROGRESS_POLL_S)[0]:
                    bar.update(ray.get(ledger.snapshot.remote())[1].get("pages", 0) - bar.n)
            try:
                return ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                raise cause(exc) from None

        selection = load_or_select(cfg, layout, read_books)
        plans = selection.narrators
        summary = ScrapeSummary(
            requested=cfg.speakers,
            selected=len(plans),
            eligible=selection.eligible,
            books_seen=selection.books_seen,
            minutes=cfg.minutes,
            books_used=sum(len(p.books) for p in plans),
            skipped=Counter(selection.skipped),
            manifest=layout.manifest,
        )
        todo = [p for p in plans if load_done(layout.audio, p.reader_id, settings) is None]
        started = time.monotonic()
        build_narrators(ray, todo, cfg, settings, gate, ledger, summary)
        summary.elapsed_s = time.monotonic() - started
        summary.retries, counters, summary.nodes = ray.get(ledger.snapshot.remote())
        summary.downloads = counters.get("files", 0)
    # every narrator is now final or failed: a temporary folder left is an abandoned attempt (of a task on a lost
    # node, or of a killed earlier run whose workers outlived its driver and wrote after the cleaning above)
    _clean_stale(layout.audio)

    rows = []
    for plan in plans:
        done = load_done(layout.audio, plan.reader_id, settings)
        folder = narrator_dir(layout.audio, plan.reader_id)
        for seg in (done or {}).get("segments", []):
            rows.append(
                ManifestRow(folder / seg["file"], plan.reader_id, seg["book_id"], float(seg["duration_s"]), "train")
            )
    rows = apply_splits(
        sorted(rows, key=lambda r: str(r.path)), cfg.seed, cfg.val_fraction, cfg.test_fraction, cfg.exclude_speakers
    )
    write_manifest(layout.manifest, rows)
    speakers = {r.speaker_id: r.split for r in rows}
    summary.built = len(speakers)
    summary.built_now = summary.processed
    summary.segments = len(rows)
    summary.seconds = sum(r.duration_s for r in rows)
    summary.split_speakers = {s: sum(1 for v in speakers.values() if v == s) for s in ("train", "val", "test")}
    return summary
