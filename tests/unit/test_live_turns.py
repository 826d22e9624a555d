"""The live demo's turn decoder as a stream: final turns and the provisional label, on synthetic voices."""

from itertools import pairwise

import numpy as np
import pytest

from fewshot.live.turns import TurnStream, stream_turns
from synth import SR, VOICES, conversation, synth_voice

#: Two voices taking turns: changes with no pause, short pauses, and one long pause (1.0 s) that ends a turn.
PLAN = [("ann", 4.0, 0.0), ("bob", 3.0, 0.3), ("ann", 3.5, 0.0), ("bob", 4.0, 1.0), ("ann", 3.0, 0.0)]


@pytest.fixture(scope="module")
def pair(default_extractor):
    """The SVM of a group of two synthetic voices, 15 s of speech each."""
    from fewshot.groups.svc import GroupSVC

    names = ["ann", "bob"]
    E = default_extractor.embed([synth_voice(**VOICES[n], seconds=15.0, seed=0) for n in names], return_segments=True)
    return GroupSVC().fit(np.concatenate(E), np.repeat(names, [len(e) for e in E])).fitted_


def test_turns_of_two_voices_are_final_at_the_change_and_labelled_early(pair, default_extractor):
    y, reference = conversation(PLAN)
    finals = []
    turns, shown = stream_turns(y, pair, default_extractor, on_turn=finals.append)
    assert finals == turns
    assert [t.speaker for t in turns] == [who for _, _, who in reference], turns
    for turn, (start, end, _) in zip(turns, reference):
        assert abs(turn.start_s - start) <= 0.5 and abs(turn.end_s - end) <= 0.5, (turn, start, end)
        assert 0.5 < turn.score <= 1.0
    assert all(a.end_s <= b.start_s for a, b in pairwise(turns))
    assert turns[4].start_s - turns[3].end_s > 0.8  # the long pause belongs to nobody
    # the provisional label names each turn's speaker within 1.5 s of audio after the turn starts
    for start, end, who in reference:
        first = [t for t, cur in shown if start <= t <= end and cur.speaker == who]
        assert first and first[0] - start <= 1.5, (start, who, shown)


def test_a_turn_is_final_before_the_input_ends(pair, default_extractor):
    """Lines come while speech goes on: a change confirmed, or a long pause, makes the turn before it final."""
    y, reference = conversation(PLAN)
    stream, step, when = TurnStream(pair, default_extractor), SR // 10, []
    for i in range(0, len(y), step):
        when += [((i + step) / SR, t) for t in stream.add(y[i : i + step])]
    assert [t.speaker for _, t in when] == [who for _, _, who in reference[:-1]]
    for (heard, turn), (_, end, _) in zip(when, reference):
        assert heard - end <= 2.5, (heard, turn)  # 1.5 s of the next speaker (or a 0.5 s pause), and a window
    assert [t.speaker for t in stream.flush()] == ["ann"] and stream.current is None


def test_silence_and_a_click_give_no_turn(pair, default_extractor):
    y = np.zeros(3 * SR, np.float32)
    y[SR : SR + SR // 20] = 0.3 * np.sin(np.arange(SR // 20) * 0.5)  # 50 ms click
    turns, shown = stream_turns(y, pair, default_extractor)
    assert turns == [] and shown == []
