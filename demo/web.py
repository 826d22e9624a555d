#!/usr/bin/env python
"""The web page: enroll, listen live and look back at recordings in a browser, on this machine.

    python demo/web.py [--host 127.0.0.1] [--port 8000] [--store PATH] [--model DIR] [--report FILE]

The app lives in :mod:`fewshot.live.web` (``fewshot serve`` runs the same); it needs the extra ``web``.
"""

from fewshot.live.web.server import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python demo/web.py"))
