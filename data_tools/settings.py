"""Settings of a corpus build, the output folder's layout, and the HTTP client its tasks use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fewshot.cluster import default_cpus

from .archive import ARCHIVE_BASE
from .gate import Gate
from .librivox import API_BASE
from .net import DEFAULT_USER_AGENT, PoliteClient, RetryPolicy


@dataclass
class ScrapeConfig:
    """Settings of one corpus build (see ``scripts/scrape_librivox.py --help``)."""

    out: Path
    speakers: int
    minutes: float
    language: str | None = "English"
    api_base: str = API_BASE
    archive_base: str = ARCHIVE_BASE
    workers: int = field(default_factory=default_cpus)
    cluster: str | None = None
    downloads_per_host: int = 1
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


def make_client(cfg: ScrapeConfig, gate: Gate | None = None) -> PoliteClient:
    """The HTTP client of a task: the run's settings, politeness booked in ``gate``."""
    retry = RetryPolicy(max_attempts=cfg.max_attempts, backoff_s=cfg.retry_backoff)
    return PoliteClient(cfg.user_agent, cfg.request_interval, cfg.timeout, retry, gate=gate)
