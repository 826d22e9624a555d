"""Write example recordings for the README's commands: two synthetic people, spoken by espeak-ng.

Example
-------
    .venv/bin/python scripts/example_voices.py          # in the folder where the commands will run

Writes ``ann1.wav``, ``ann2.m4a`` and ``who.wav`` (ann), ``bob.mp3`` (bob) and
``meeting.flac`` (ann and bob taking turns) into the current folder (or ``--out``);
the work is :mod:`fewshot.live.examples`.
"""

from fewshot.live.examples import main

if __name__ == "__main__":
    raise SystemExit(main(prog="scripts/example_voices.py"))
