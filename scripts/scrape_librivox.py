"""Build a speaker-labelled training corpus from LibriVox solo recordings.

Pages the LibriVox catalogue, keeps solo books, picks ``--speakers`` distinct
narrators with at least ``--minutes`` of audio each, downloads their 64 kbps
chapter MP3s from archive.org, and writes 16 kHz mono WAV segments plus
``manifest.csv`` (path, speaker_id, book_id, duration_s, split) with a
speaker-disjoint train/val/test split into ``--out``. Stop it at any time and
run the same command again to continue.

Exit status: 0 when the corpus was built, 1 when no narrator was built or
downloads failed (the reason is the last line on stderr), 2 for bad arguments
or an unusable catalogue page.

Examples
--------
Build 300 narrators with 10 minutes each::

    python scripts/scrape_librivox.py --out corpus --speakers 300 --minutes 10

The stages run as Ray tasks: on a private Ray runtime on this machine by
default, or on every node of a Ray cluster (``ray start`` on each; ``--out`` on
a folder all nodes share at the same path) with one command on any node::

    python scripts/scrape_librivox.py --out /shared/corpus --speakers 6000 --minutes 240 --cluster auto
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from data_tools.archive import ARCHIVE_BASE
from data_tools.corpus import run_scrape
from data_tools.librivox import API_BASE, CatalogueError
from data_tools.net import HttpError
from data_tools.settings import ScrapeConfig
from data_tools.splits import read_speaker_list
from fewshot.cluster import ClusterError, default_cpus
from fewshot.datasets import ManifestError


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (corpus, caches, state)")
    p.add_argument("--speakers", type=int, required=True, help="number of distinct narrators wanted")
    p.add_argument(
        "--minutes", type=float, required=True, help="minutes of audio per narrator (before silence removal)"
    )
    p.add_argument("--language", default="English", help="book language; 'any' keeps all (default English)")
    p.add_argument("--api-base", default=API_BASE, help=f"LibriVox catalogue API (default {API_BASE})")
    p.add_argument("--archive-base", default=ARCHIVE_BASE, help=f"archive.org base address (default {ARCHIVE_BASE})")
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run on the Ray cluster whose head is at HOST:PORT ('auto': the cluster this machine "
        "is part of); default: a private Ray runtime on this machine",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=default_cpus(),
        help=f"CPUs of the private Ray runtime (default {default_cpus()}; ignored with --cluster)",
    )
    p.add_argument(
        "--downloads-per-host",
        type=int,
        default=1,
        help="downloads at once from one host, for the whole cluster (default 1)",
    )
    p.add_argument(
        "--exclude-speakers", type=Path, metavar="FILE", help="file with one reader_id per line to leave out"
    )
    p.add_argument("--segment-seconds", type=float, default=5.0, help="segment length in seconds (default 5)")
    p.add_argument("--spectrograms", action="store_true", help="also save a PNG spectrogram per segment")
    p.add_argument(
        "--request-interval", type=float, default=1.0, help="seconds between requests to one host (default 1)"
    )
    p.add_argument(
        "--retry-backoff", type=float, default=2.0, help="first retry wait in seconds, doubled each retry (default 2)"
    )
    p.add_argument("--max-attempts", type=int, default=6, help="attempts per request or download (default 6)")
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    p.add_argument("--page-size", type=int, default=50, help="catalogue books per page, at most 50 (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val/test split (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of narrators for validation (default 0.1)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share of narrators for test (default 0.1)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--progress", action="store_true", help="show progress bars on standard error even when it is not a terminal"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log retries and skipped items")
    return p


def main(argv=None) -> int:
    """Run the corpus builder; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.speakers < 1 or args.minutes <= 0 or args.segment_seconds <= 0:
        parser.error("--speakers, --minutes and --segment-seconds must be positive")
    if not 1 <= args.page_size <= 50:
        parser.error("--page-size must be between 1 and 50")
    if args.workers < 1 or args.downloads_per_host < 1:
        parser.error("--workers and --downloads-per-host must be at least 1")
    try:
        exclude = frozenset(read_speaker_list(args.exclude_speakers)) if args.exclude_speakers else frozenset()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.exclude_speakers}: unreadable speaker list: {exc}", file=sys.stderr)
        return 2
    language = None if args.language.strip().lower() in ("", "any", "all") else args.language
    config = ScrapeConfig(
        out=args.out,
        speakers=args.speakers,
        minutes=args.minutes,
        language=language,
        api_base=args.api_base,
        archive_base=args.archive_base,
        workers=args.workers,
        cluster=args.cluster,
        downloads_per_host=args.downloads_per_host,
        exclude_speakers=exclude,
        segment_seconds=args.segment_seconds,
        spectrograms=args.spectrograms,
        request_interval=args.request_interval,
        retry_backoff=args.retry_backoff,
        max_attempts=max(1, args.max_attempts),
        timeout=args.timeout,
        page_size=args.page_size,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        progress=not args.no_progress and (args.progress or sys.stderr.isatty()),  # bars on a terminal only
    )
    try:
        summary = run_scrape(config)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    except CatalogueError as exc:
        print(f"unusable catalogue page: {exc}", file=sys.stderr)
        return 2
    except (ClusterError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (HttpError, ManifestError, OSError) as exc:
        print(f"failed: {exc}; run the same command again to continue", file=sys.stderr)
        return 1
    print(summary.format())
    reason = summary.failure()
    if reason is not None:
        print(f"failed: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
