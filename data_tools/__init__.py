"""Tools that build the speaker-labelled training corpus from LibriVox.

The corpus is built by small stages that share one manifest:

* :mod:`data_tools.librivox` pages the LibriVox catalogue API into :class:`~data_tools.librivox.Book` records;
* :mod:`data_tools.selection` keeps solo books and picks distinct narrators;
* :mod:`data_tools.archive` and :mod:`data_tools.download` fetch chapter MP3s from archive.org;
* :mod:`data_tools.convert` and :mod:`data_tools.segment` turn them into fixed-length 16 kHz WAV segments;
* :mod:`data_tools.manifest` and :mod:`data_tools.splits` write ``manifest.csv`` with a speaker-disjoint split;
* :mod:`data_tools.pipeline` runs the stages in order and can be restarted at any point.
"""
