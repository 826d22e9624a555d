"""The report a corpus build prints, and the ledger its tasks write to.

Contract
--------
:class:`Ledger` counts, for the whole cluster, each stage's task attempts
(a task that a lost node had started runs again and counts again) and the
run's progress counters; it runs as one Ray actor per run. :class:`ScrapeSummary`
is the report: narrators, hours, failures and retries per stage, throughput.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DOWNLOAD_FAILED = "download failed"


#: The stages that run as tasks, in order.
STAGES = ("catalogue", "download", "process")


class Ledger:
    """Task attempts per stage and progress counters, written by the tasks of one run."""

    def __init__(self) -> None:
        self.attempts: dict[str, Counter] = {stage: Counter() for stage in STAGES}
        self.counters: Counter = Counter()
        self.nodes: set[str] = set()

    def started(self, stage: str, key: str, node: str) -> None:
        """A task of ``stage`` for ``key`` (a narrator, or the catalogue) started on ``node``."""
        self.attempts.setdefault(stage, Counter())[key] += 1
        self.nodes.add(node)

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (``pages``, ``files``)."""
        self.counters[name] += n

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], int]:
        """``(retries per stage, counters, nodes that ran a task)`` so far."""
        retries = {stage: sum(n - 1 for n in keys.values()) for stage, keys in self.attempts.items()}
        return retries, dict(self.counters), len(self.nodes)


@dataclass
class ScrapeSummary:
    """What a run found, built and skipped."""

    requested: int = 0
    selected: int = 0
    eligible: int = 0
    books_seen: int = 0
    books_used: int = 0
    built: int = 0
    segments: int = 0
    seconds: float = 0.0
    split_speakers: dict = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    downloads: int = 0
    processed: int = 0
    processed_input_s: float = 0.0
    processing_s: float = 0.0
    minutes: float = 0.0
    manifest: Path | None = None
    retries: dict = field(default_factory=dict)
    nodes: int = 1
    built_now: int = 0
    elapsed_s: float = 0.0

    def failure(self) -> str | None:
        """Why the run counts as failed (one line), or ``None`` when it did its job.

        A run fails when a narrator could not be built because a download
        failed for good, or when no narrator is in the manifest.
        """
        failed = self.failed.get(DOWNLOAD_FAILED, 0)
        if failed:
            noun = "narrator" if failed == 1 else "narrators"
            return f"{failed} {noun} not built because downloads failed; run the same command again to retry"
        if not self.built:
            return "no narrator was built"
        return None

    def format(self) -> str:
        """Human-readable report."""
        lines = [
            f"Narrators: {self.built} built, {self.selected} selected of {self.requested} requested "
            f"({self.eligible} solo narrators with at least {self.minutes:g} min in the catalogue)"
        ]
        if self.selected < self.requested:
            lines.append(f"  only {self.selected} narrators with at least {self.minutes:g} min were found")
        splits = ", ".join(f"{k} {v}" for k, v in self.split_speakers.items())
        lines.append(f"Audio: {self.seconds / 3600:.2f} h in {self.segments} segments (narrators: {splits})")
        lines.append(f"Catalogue: {self.books_seen} books read, {self.books_used} used")
        for title, counts in (("Skipped books", self.skipped), ("Narrators not built", self.failed)):
            if counts:
                lines.append(f"{title}:")
                lines += [f"  {reason}: {n}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        lines.append(f"Downloads this run: {self.downloads} files")
        if self.processed:
            hours = self.processed_input_s / 3600
            per_hour = self.processing_s / hours if hours else 0.0
            lines.append(
                f"Processing: {self.processed} narrators, {hours:.3f} h of audio in "
                f"{self.processing_s:.1f} s ({per_hour:.0f} s per hour of audio)"
            )
        retried = ", ".join(f"{stage} {self.retries.get(stage, 0)}" for stage in STAGES)
        lines.append(f"Tasks retried after a lost node or worker: {retried}")
        if self.elapsed_s > 0:
            per_minute = self.built_now / (self.elapsed_s / 60)
            nodes = f"{self.nodes} node{'s' if self.nodes != 1 else ''}"
            lines.append(
                f"Throughput: {self.built_now} narrators downloaded and processed in {self.elapsed_s:.1f} s "
                f"({per_minute:.1f} per minute); tasks ran on {nodes}"
            )
        lines.append(f"Manifest: {self.manifest}")
        return "\n".join(lines)
