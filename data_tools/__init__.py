"""Tools that build the speaker-labelled training corpus from LibriVox.

The corpus is built by small stages that share one manifest (its format lives in
:mod:`fewshot.datasets`; ``data_tools`` depends on ``fewshot``, never the reverse):

* :mod:`data_tools.librivox` pages the LibriVox catalogue API into :class:`~data_tools.librivox.Book` records;
* :mod:`data_tools.selection` keeps solo books and picks distinct narrators;
* :mod:`data_tools.archive` and :mod:`data_tools.download` fetch chapter MP3s from archive.org, as
  politely as :mod:`data_tools.net` and :mod:`data_tools.gate` (one limit per host for a whole cluster) say;
* :mod:`data_tools.process` and :mod:`data_tools.segment` turn them into fixed-length 16 kHz WAV segments
  (decoded and cut by :mod:`fewshot.audio.decode`);
* :mod:`data_tools.splits` writes ``manifest.csv`` with a speaker-disjoint split;
* :mod:`data_tools.tasks` runs the stages as Ray tasks and :mod:`data_tools.corpus` drives a build
  (settings in :mod:`data_tools.settings`, report in :mod:`data_tools.summary`); it can be restarted at any point.
"""
