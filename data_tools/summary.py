"""The report a corpus build prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DOWNLOAD_FAILED = "download failed"


@dataclass
class ScrapeSummary:
    """What a run found, built and skipped."""

    requested: int = 0
    selected: int = 0
    eligible: int = 0
    in_shard: int = 0
    shard: tuple = (0, 1)
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
        lines = [f"Narrators: {self.built} built, {self.selected} selected of {self.requested} requested "
                 f"({self.eligible} solo narrators with at least {self.minutes:g} min in the catalogue)"]
        if self.selected < self.requested:
            lines.append(f"  only {self.selected} narrators with at least {self.minutes:g} min were found")
        if self.shard[1] > 1:
            lines.append(f"Shard {self.shard[0]}/{self.shard[1]}: {self.in_shard} of the selected narrators")
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
            lines.append(f"Processing: {self.processed} narrators, {hours:.3f} h of audio in "
                         f"{self.processing_s:.1f} s ({per_hour:.0f} s per hour of audio)")
        lines.append(f"Manifest: {self.manifest}")
        return "\n".join(lines)
