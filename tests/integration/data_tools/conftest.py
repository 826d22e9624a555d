"""Shared fixtures: a fixture catalogue, its HTTP server, a fast client, and a private Ray runtime."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from data_tools.net import PoliteClient, RetryPolicy
from fixture_server import FixtureServer, FixtureSite, demo_site, solo

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

MINUTES = "0.08"  # 4.8 s: two 3 s chapters per narrator


@pytest.fixture(scope="session")
def site() -> FixtureSite:
    """Narrator 500 on two one-chapter books, then a 16-book demo catalogue."""
    site = FixtureSite()
    site.add_book(990, solo("500", "Reader 500", 1), 3.0)
    site.add_book(995, solo("500", "Reader 500", 1), 3.0)
    return demo_site(16, 3.0, 2, site=site)


@pytest.fixture
def server(site):
    with FixtureServer(site) as srv:
        yield srv


@pytest.fixture
def client() -> PoliteClient:
    return PoliteClient(request_interval=0.0, timeout=10.0, retry=RetryPolicy(max_attempts=4, backoff_s=0.0))


@pytest.fixture(scope="session")
def ray_runtime():
    """One private Ray runtime (two CPUs) for the builds of a test process; yields its address."""
    from fewshot.cluster import runtime

    with runtime(cpus=2) as ray:
        yield ray.get_runtime_context().gcs_address


@pytest.fixture(scope="session")
def scrape_main(ray_runtime):
    """``main`` of ``scripts/scrape_librivox.py``, building on the session's Ray runtime."""
    spec = importlib.util.spec_from_file_location("scrape_librivox", REPO / "scripts" / "scrape_librivox.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _scrape_argv(server: FixtureServer, out: Path, *extra: str, speakers: int = 4) -> list[str]:
    return [
        "--out",
        str(out),
        "--speakers",
        str(speakers),
        "--minutes",
        MINUTES,
        "--api-base",
        server.api_base,
        "--archive-base",
        server.url,
        "--request-interval",
        "0",
        "--retry-backoff",
        "0",
        "--timeout",
        "10",
        "--segment-seconds",
        "1",
        "--page-size",
        "5",
        "--no-progress",
        *extra,
    ]


@pytest.fixture(scope="session")
def scrape_argv():
    """``scrape_argv(server, out, *extra, speakers=4)``: a fast, quiet command line."""
    return _scrape_argv
