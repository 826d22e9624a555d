"""The stages of a corpus build as Ray tasks, and the scheduling of the narrators' tasks.

Contract
--------
:func:`read_catalogue` is the catalogue task (one per build). Per narrator,
:func:`download_narrator` (archive metadata and chapters, md5-verified; no
CPU reserved, since it waits on the network and on the cluster-wide
per-host slots) feeds :func:`process_job` (decode, trim, drop pauses, cut,
write; one CPU). :func:`build_narrators` schedules them over the cluster,
keeps a few downloads ready behind the per-host slots, shows one progress bar
for the whole cluster, and counts failures per stage. Tasks return their
warnings for the driver to log. A task whose node or worker died is run
again (``TASK_RETRIES`` times); every file has one owning task.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from tqdm import tqdm

from fewshot.cluster import cause

from .archive import MetadataError, download_url, fetch_metadata, pick_mp3s, plan_chapters
from .download import DownloadError, download_file
from .gate import Gate
from .librivox import Book, Catalogue
from .net import HttpError
from .paths import UnsafePathError, safe_join
from .process import NarratorJob, NarratorResult, ProcessSettings, process_narrator
from .selection import NarratorPlan
from .settings import Layout, ScrapeConfig, make_client
from .summary import DOWNLOAD_FAILED, ScrapeSummary

logger = logging.getLogger(__name__)

UNSAFE_PATH = "unsafe path in archive item"
PROCESSING_FAILED = "processing failed"
#: Times a task is run again after its node or worker died.
TASK_RETRIES = 4
#: Seconds between two looks at the cluster's progress.
PROGRESS_POLL_S = 0.5


def _started(ledger, stage: str, key: str) -> None:
    import ray

    # waited for, as every ledger call of a task is: a call still in flight when the task's result reaches the
    # driver would be missing from the driver's summary
    ray.get(ledger.started.remote(stage, key, ray.get_runtime_context().get_node_id()))


def _count(ledger, name: str) -> None:
    import ray

    ray.get(ledger.add.remote(name))


def read_catalogue(cfg: ScrapeConfig, gate: Gate, ledger) -> list[Book]:
    """Every book of the catalogue (the catalogue task; pages are cached in ``cache/catalogue``).

    Raises
    ------
    CatalogueError
        When a page is unusable.
    HttpError
        When a page cannot be fetched.
    """
    _started(ledger, "catalogue", "catalogue")
    layout = Layout(cfg.out)
    catalogue = Catalogue(make_client(cfg, gate), cfg.api_base, layout.catalogue, cfg.page_size)
    books = []
    for page in catalogue.iter_pages():
        books += page
        _count(ledger, "pages")
    return books


@dataclass
class Downloaded:
    """What a narrator's download task did: the processing job (``None``: no usable book), or the error."""

    reader_id: str
    job: NarratorJob | None = None
    error: str | None = None
    skipped: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)


def download_narrator(
    plan: NarratorPlan, cfg: ScrapeConfig, settings: ProcessSettings, gate: Gate, ledger
) -> Downloaded:
    """Download the chapters a narrator needs (the download task).

    Parameters
    ----------
    plan : NarratorPlan
        The narrator and their books, in order.
    cfg : ScrapeConfig
        Run settings (archive base address, network settings).
    settings : ProcessSettings
        ``max_seconds`` bounds the chapters fetched.
    gate : Gate
        The run's politeness gate.
    ledger : actor handle
        The run's :class:`~data_tools.summary.Ledger`.

    Returns
    -------
    Downloaded
        The processing job for the downloaded chapters, skipped books, or the
        reason a chapter could not be downloaded and verified.
    """
    _started(ledger, "download", plan.reader_id)
    layout, client = Layout(cfg.out), make_client(cfg, gate)
    out = Downloaded(plan.reader_id)
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
            out.warnings.append(f"book {book.book_id}: skipped: {exc}")
            out.skipped[UNSAFE_PATH] += 1
            continue
        except (MetadataError, HttpError) as exc:
            out.warnings.append(f"book {book.book_id}: {exc}")
            out.skipped["archive metadata unusable"] += 1
            continue
        if not chapters:
            out.skipped["no MP3 in archive item"] += 1
            continue
        for f, dest in targets:
            url = download_url(cfg.archive_base, book.identifier, f.name)
            try:
                if download_file(client, url, dest, md5=f.md5, size=f.size):
                    _count(ledger, "files")
            except DownloadError as exc:
                out.error = str(exc)
                return out
        budget -= sum(f.estimated_seconds() or 0.0 for f in chapters)
        books.append((book.book_id, [dest for _, dest in targets]))
    if books:
        out.job = NarratorJob(plan.reader_id, books, layout.audio, settings)
    return out


def process_job(job: NarratorJob, ledger) -> NarratorResult:
    """Build one narrator's folder (the processing task; see :func:`~data_tools.process.process_narrator`)."""
    _started(ledger, "process", job.reader_id)
    return process_narrator(job)


class _Progress:
    """The one progress bar of a run: narrators finished, with the cluster's counters beside it."""

    def __init__(self, ray, ledger, total: int, enabled: bool):
        self.ray, self.ledger = ray, ledger
        self.bar = tqdm(desc="narrators", unit="narrator", total=total, disable=not enabled)
        self.enabled = enabled
        self.last = 0.0

    def poll(self, active: Counter, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < PROGRESS_POLL_S and not force):
            return
        self.last = now
        retries, counters, _ = self.ray.get(self.ledger.snapshot.remote())
        text = (
            f"downloading {active['download']}, processing {active['process']}, "
            f"files {counters.get('files', 0)}, retried {sum(retries.values())}"
        )
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def build_narrators(
    ray,
    todo: list[NarratorPlan],
    cfg: ScrapeConfig,
    settings: ProcessSettings,
    gate: Gate,
    ledger,
    summary: ScrapeSummary,
) -> None:
    """Run the download and processing tasks of ``todo``; counts go to ``summary``."""
    download = ray.remote(download_narrator).options(num_cpus=0, max_retries=TASK_RETRIES, scheduling_strategy="SPREAD")
    process = ray.remote(process_job).options(num_cpus=1, max_retries=TASK_RETRIES)
    queue = deque(todo)
    running: dict = {}
    active: Counter = Counter()
    # downloads queue up behind the per-host slots: keep a few ready, not the whole selection
    in_flight = max(4, 2 * cfg.downloads_per_host)
    progress = _Progress(ray, ledger, len(todo), cfg.progress)

    def submit(ref, stage: str, reader_id: str) -> None:
        running[ref] = (stage, reader_id)
        active[stage] += 1

    def failed(reason: str, reader_id: str, message: str) -> None:
        logger.warning("narrator %s: %s", reader_id, message)
        summary.failed[reason] += 1
        progress.bar.update()

    try:
        while queue or running:
            while queue and active["download"] < in_flight:
                plan = queue.popleft()
                submit(download.remote(plan, cfg, settings, gate, ledger), "download", plan.reader_id)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=PROGRESS_POLL_S)
            for ref in ready:
                stage, reader_id = running.pop(ref)
                active[stage] -= 1
                try:
                    value = ray.get(ref)
                except Exception as exc:
                    reason = DOWNLOAD_FAILED if stage == "download" else PROCESSING_FAILED
                    failed(reason, reader_id, f"{stage} failed: {str(cause(exc)).splitlines()[0]}")
                    continue
                if stage == "process":
                    summary.processed += 1
                    summary.processed_input_s += value.input_seconds
                    summary.processing_s += value.elapsed_s
                    progress.bar.update()
                    continue
                for text in value.warnings:
                    logger.warning("%s", text)
                summary.skipped.update(value.skipped)
                if value.error is not None:
                    failed(DOWNLOAD_FAILED, reader_id, value.error)
                elif value.job is None:
                    failed("no usable audio", reader_id, "no book with usable audio")
                else:
                    submit(process.remote(value.job, ledger), "process", reader_id)
            progress.poll(active)
        progress.poll(active, force=True)
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        progress.close()
