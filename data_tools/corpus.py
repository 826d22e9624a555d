"""The corpus builder: catalogue, selection, downloads, processing, manifest.

Contract
--------
:func:`run_scrape` turns a :class:`ScrapeConfig` into ``<out>/manifest.csv``
and returns a :class:`ScrapeSummary`. It can be stopped at any point and run
again: catalogue pages and item metadata are cached, the selection is kept in
``state.json``, downloads resume from ``.part`` files, and narrators whose
folder is complete are not touched, so the final manifest is the same as
after an uninterrupted run. Layout of ``<out>``::

    cache/catalogue/  cache/metadata/      cached API answers
    downloads/<identifier>/<name>.mp3      verified chapter MP3s
    audio/<reader_id>/<reader_id>-<book_id>-<nnnn>.wav (+ segments.json)
    state.json  manifest.csv
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from fewshot.datasets import ManifestRow, write_manifest
from fewshot.persistence import atomic_write_json, read_json

from .archive import ARCHIVE_BASE, MetadataError, download_url, fetch_metadata, pick_mp3s, plan_chapters
from .download import DownloadError, download_file
from .librivox import API_BASE, Catalogue, book_from_dict
from .net import DEFAULT_USER_AGENT, HttpError, PoliteClient, RetryPolicy
from .paths import UnsafePathError, safe_join
from .process import (
    NarratorJob,
    ProcessSettings,
    load_done,
    narrator_dir,
    process_narrator,
)
from .selection import NarratorPlan, Selection, select_narrators
from .shards import in_shard
from .splits import apply_splits
from .summary import DOWNLOAD_FAILED, ScrapeSummary

logger = logging.getLogger(__name__)

STATE_VERSION = 2
UNSAFE_PATH = "unsafe path in archive item"


@dataclass
class ScrapeConfig:
    """Settings of one corpus build (see ``scripts/scrape_librivox.py --help``)."""

    out: Path
    speakers: int
    minutes: float
    language: str | None = "English"
    api_base: str = API_BASE
    archive_base: str = ARCHIVE_BASE
    workers: int = 1
    exclude_speakers: frozenset = frozenset()
    segment_seconds: float = 5.0
    spectrograms: bool = False
    request_interval: float = 1.0
    retry_backoff: float = 2.0
    max_attempts: int = 6
    timeout: float = 60.0
    page_size: int = 50
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    shard: tuple = (0, 1)
    user_agent: str = DEFAULT_USER_AGENT
    progress: bool = True


class Layout:
    """Paths inside the output folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.catalogue = self.root / "cache" / "catalogue"
        self.metadata = self.root / "cache" / "metadata"
        self.downloads = self.root / "downloads"
        self.audio = self.root / "audio"
        self.state = self.root / "state.json"
        self.manifest = self.root / "manifest.csv"


def _selection_params(cfg: ScrapeConfig) -> dict:
    return {"api_base": cfg.api_base, "page_size": cfg.page_size, "speakers": cfg.speakers,
            "minutes": cfg.minutes, "language": cfg.language, "exclude": sorted(cfg.exclude_speakers)}


def load_or_select(cfg: ScrapeConfig, client: PoliteClient, layout: Layout) -> Selection:
    """The selection kept in ``state.json``, or a new one from the (cached) catalogue.

    Parameters
    ----------
    cfg : ScrapeConfig
        Run settings; a change in the selection settings makes a new selection.
    client : PoliteClient
        HTTP client for catalogue pages not yet cached.
    layout : Layout
        Paths of the output folder.

    Returns
    -------
    Selection
        The narrators to build, with skip counts.
    """
    params = _selection_params(cfg)
    state = read_json(layout.state)
    if isinstance(state, dict) and state.get("version") == STATE_VERSION and state.get("params") == params:
        plans = [NarratorPlan(n["reader_id"], n["display_name"], [book_from_dict(b) for b in n["books"]])
                 for n in state["narrators"]]
        return Selection(plans, state["eligible"], state["books_seen"], Counter(state["skipped"]))
    catalogue = Catalogue(client, cfg.api_base, layout.catalogue, cfg.page_size)
    books = []
    with tqdm(desc="catalogue", unit="page", disable=not cfg.progress) as bar:
        for page in catalogue.iter_pages():
            books += page
            bar.update()
    selection = select_narrators(books, cfg.speakers, cfg.minutes * 60, cfg.language, cfg.exclude_speakers)
    atomic_write_json(layout.state, {
        "version": STATE_VERSION, "params": params, "eligible": selection.eligible,
        "books_seen": selection.books_seen, "skipped": dict(selection.skipped),
        "narrators": [{"reader_id": p.reader_id, "display_name": p.display_name,
                       "books": [b.to_dict() for b in p.books]} for p in selection.narrators],
    })
    return selection


def prepare_narrator(plan: NarratorPlan, cfg: ScrapeConfig, client: PoliteClient, layout: Layout,
                     settings: ProcessSettings, summary: ScrapeSummary, bar: tqdm) -> NarratorJob | None:
    """Download the chapters a narrator needs; ``None`` when no book has usable audio.

    Parameters
    ----------
    plan : NarratorPlan
        The narrator and their books, in order.
    cfg : ScrapeConfig
        Run settings (archive base address).
    client : PoliteClient
        HTTP client.
    layout : Layout
        Paths of the output folder.
    settings : ProcessSettings
        ``max_seconds`` bounds the chapters fetched.
    summary : ScrapeSummary
        Receives skipped books and the download count.
    bar : tqdm
        Download progress bar.

    Returns
    -------
    NarratorJob or None
        The processing job for the downloaded chapters.

    Raises
    ------
    DownloadError
        When a chapter cannot be downloaded and verified.
    """
    budget = settings.max_seconds
    books = []
    for book in plan.books:
        if budget <= 0:
            break
        try:
            item_dir = safe_join(layout.downloads, book.identifier)
            files = fetch_metadata(client, cfg.archive_base, book.identifier, layout.metadata)
            chapters = plan_chapters(pick_mp3s(files, [s.listen_url for s in book.sections]), budget)
            targets = [(f, safe_join(item_dir, f.name)) for f in chapters]
        except UnsafePathError as exc:
            logger.warning("book %s: skipped: %s", book.book_id, exc)
            summary.skipped[UNSAFE_PATH] += 1
            continue
        except (MetadataError, HttpError) as exc:
            logger.warning("book %s: %s", book.book_id, exc)
            summary.skipped["archive metadata unusable"] += 1
            continue
        if not chapters:
            summary.skipped["no MP3 in archive item"] += 1
            continue
        bar.total = (bar.total or 0) + len(targets)
        bar.refresh()
        for f, dest in targets:
            url = download_url(cfg.archive_base, book.identifier, f.name)
            if download_file(client, url, dest, md5=f.md5, size=f.size):
                bar.set_postfix_str(f.name[-40:], refresh=False)
                summary.downloads += 1
            bar.update()
        budget -= sum(f.estimated_seconds() or 0.0 for f in chapters)
        books.append((book.book_id, [dest for _, dest in targets]))
    if not books:
        return None
    return NarratorJob(plan.reader_id, books, layout.audio, settings)


def _build(todo: list[NarratorPlan], cfg: ScrapeConfig, client: PoliteClient, layout: Layout,
           settings: ProcessSettings, summary: ScrapeSummary) -> None:
    pool = ProcessPoolExecutor(max_workers=cfg.workers) if cfg.workers > 0 else None
    downloads = tqdm(desc="downloads", unit="file", total=0, disable=not cfg.progress)
    processing = tqdm(desc="processing", unit="narrator", total=len(todo), disable=not cfg.progress)
    futures = {}

    def finished(result) -> None:
        summary.processed += 1
        summary.processed_input_s += result.input_seconds
        summary.processing_s += result.elapsed_s

    try:
        for plan in todo:
            try:
                job = prepare_narrator(plan, cfg, client, layout, settings, summary, downloads)
            except DownloadError as exc:
                logger.warning("narrator %s: %s", plan.reader_id, exc)
                summary.failed[DOWNLOAD_FAILED] += 1
                continue
            if job is None:
                summary.failed["no usable audio"] += 1
            elif pool is None:
                try:
                    finished(process_narrator(job))
                except Exception as exc:  # noqa: BLE001 - one bad narrator must not stop the corpus
                    logger.warning("narrator %s: processing failed: %s", plan.reader_id, exc)
                    summary.failed["processing failed"] += 1
                processing.update()
            else:
                future = pool.submit(process_narrator, job)
                future.add_done_callback(lambda _f: processing.update())
                futures[future] = plan.reader_id
        for future in as_completed(futures):
            try:
                finished(future.result())
            except Exception as exc:  # noqa: BLE001
                logger.warning("narrator %s: processing failed: %s", futures[future], exc)
                summary.failed["processing failed"] += 1
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        downloads.close()
        processing.close()


def _clean_stale(audio: Path) -> None:
    if audio.is_dir():
        for path in audio.iterdir():
            if path.name.startswith(".") and path.name.endswith((".tmp", ".old")) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def run_scrape(cfg: ScrapeConfig) -> ScrapeSummary:
    """Build (or finish building) the corpus described by ``cfg``; see the module contract."""
    layout = Layout(cfg.out)
    layout.root.mkdir(parents=True, exist_ok=True)
    _clean_stale(layout.audio)
    retry = RetryPolicy(max_attempts=cfg.max_attempts, backoff_s=cfg.retry_backoff)
    client = PoliteClient(cfg.user_agent, cfg.request_interval, cfg.timeout, retry)
    selection = load_or_select(cfg, client, layout)
    plans = [p for p in selection.narrators if in_shard(p.reader_id, cfg.shard)]
    settings = ProcessSettings(max_seconds=cfg.minutes * 60, segment_seconds=cfg.segment_seconds,
                               spectrograms=cfg.spectrograms)
    summary = ScrapeSummary(requested=cfg.speakers, selected=len(selection.narrators),
                            eligible=selection.eligible, in_shard=len(plans), shard=tuple(cfg.shard),
                            books_seen=selection.books_seen, minutes=cfg.minutes,
                            books_used=sum(len(p.books) for p in selection.narrators),
                            skipped=Counter(selection.skipped), manifest=layout.manifest)
    todo = [p for p in plans if load_done(layout.audio, p.reader_id, settings) is None]
    _build(todo, cfg, client, layout, settings, summary)

    rows = []
    for plan in plans:
        done = load_done(layout.audio, plan.reader_id, settings)
        folder = narrator_dir(layout.audio, plan.reader_id)
        for seg in (done or {}).get("segments", []):
            rows.append(ManifestRow(folder / seg["file"], plan.reader_id, seg["book_id"],
                                    float(seg["duration_s"]), "train"))
    rows = apply_splits(sorted(rows, key=lambda r: str(r.path)), cfg.seed, cfg.val_fraction,
                        cfg.test_fraction, cfg.exclude_speakers)
    write_manifest(layout.manifest, rows)
    speakers = {r.speaker_id: r.split for r in rows}
    summary.built = len(speakers)
    summary.segments = len(rows)
    summary.seconds = sum(r.duration_s for r in rows)
    summary.split_speakers = {s: sum(1 for v in speakers.values() if v == s) for s in ("train", "val", "test")}
    return summary
