"""Audio in: decode a file, find its speech, prepare what the extractor sees.

- :mod:`.decode`: decode any file or array to mono at the model's rate, block by block for long inputs;
- :mod:`.vad`: the energy VAD and the speech the extractor embeds;
- :mod:`.features`: log-mel spectrograms and their fixed-length segments;
- :mod:`.degrade`: rooms, noise and microphones, for training, evaluation and multi-condition enrollment.

Nothing here knows about the network, groups or the store.
"""
