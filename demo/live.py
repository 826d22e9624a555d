#!/usr/bin/env python
"""Live demo: enroll people from the microphone, then name who is speaking.

    python demo/live.py [--group G] [--device D] [--seconds 15..35] [--model PATH] [--store PATH]
    python demo/live.py --list-devices
    python demo/live.py --group G --enroll ann=ann.wav --enroll bob=bob.wav --input talk.wav [--json]

The demo lives in :mod:`fewshot.live` (``fewshot live`` runs the same).
"""

from fewshot.live.app import main

if __name__ == "__main__":
    raise SystemExit(main())
