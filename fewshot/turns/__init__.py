"""Who speaks when: a recording's speech as one timeline, cut into speaker turns.

- :mod:`.timeline`: the speech of a recording joined without its pauses, and the map back to file time;
- :mod:`.decoder`: the turn decoder, for a whole file and for the live stream;
- :mod:`.runs`: pure functions that cut window scores into runs of one speaker.
"""
