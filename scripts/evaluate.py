"""Evaluate an extractor with the standard protocol and write a report (same as ``fewshot evaluate``).

Example
-------
    python scripts/evaluate.py ../shared/data/dev --out report --baselines
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    from fewshot.errors import FewshotError
    from fewshot.report_cli import cmd_evaluate, configure_parser

    p = configure_parser(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return cmd_evaluate(args)
    except (FewshotError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
