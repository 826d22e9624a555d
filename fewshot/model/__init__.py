"""The frozen extractor: the CNN, the backends that run it, and the model directory that holds it.

- :mod:`.extractor`: :class:`~.extractor.Extractor`, the only door to the network (speech in, unit-length embeddings out);
- :mod:`.backend`, :mod:`.keras_backend`: LiteRT and Keras, the two ways to run the CNN;
- :mod:`.nn`: the CNN's layers;
- :mod:`.modeldir`: ``meta.json`` and the files it names, checked before use;
- :mod:`.align`: voiceprints of an earlier extractor mapped into this one's space.
- :mod:`.streaming`: inputs over a minute, read and embedded block by block in flat memory.
"""
