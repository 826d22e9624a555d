"""Turns: who speaks when, in seconds of the file, on conversations of espeak-ng voices."""

from itertools import pairwise

import numpy as np
import pytest

import synth
from fewshot.audio.features import log_mel
from fewshot.config import FeatureConfig
from fewshot.errors import AudioError
from fewshot.model.extractor import log_mel_stream, window_starts
from fewshot.turns.decoder import Turn, TurnConfig, TurnDecoder, find_turns, rttm_lines
from fewshot.turns.runs import change_points, viterbi
from fewshot.turns.timeline import SpeechTimeline, embed_windows
from synth import ESPEAK_VOICES, SR, VOICES, spoken, synth_voice

#: (speaker, seconds of speech, pause after it): changes after pauses of 0.6, 0.3, 1.2 and 0 s, and one
#: person twice either side of a 1.2 s pause (two turns, the pause in neither).
PLAN = [
    ("ann", 4.0, 0.6),
    ("bob", 3.0, 0.3),
    ("cyd", 5.0, 1.2),
    ("cyd", 2.0, 0.4),
    ("ann", 2.5, 0.0),
    ("bob", 4.0, 0.5),
]


def conversation(plan=PLAN):
    return synth.conversation(plan, voices="espeak")


@pytest.fixture(scope="module")
def group(default_extractor):
    """The SVM of a group of the three espeak-ng voices, 15 s of speech each."""
    from fewshot.groups.svc import GroupSVC

    names = sorted(ESPEAK_VOICES)
    E = default_extractor.embed([spoken(n, 15.0) for n in names], return_segments=True)
    return GroupSVC(unknown_threshold=0.39).fit(np.concatenate(E), np.repeat(names, [len(e) for e in E])).fitted_


def test_viterbi_changes_state_only_for_enough_evidence():
    scores = np.array([[1, 0], [1, 0], [0.4, 0.6], [1, 0], [0, 1], [0, 1], [0, 1]])
    assert viterbi(scores, switch_penalty=0.5).tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert viterbi(scores, switch_penalty=0.0).tolist() == [0, 0, 1, 0, 1, 1, 1]
    assert viterbi(scores[:1], switch_penalty=0.5).tolist() == [0]


def test_change_points_find_where_two_voices_meet(rng):
    a, b = rng.normal(size=(2, 16))
    E = np.r_[a + 0.1 * rng.normal(size=(8, 16)), b + 0.1 * rng.normal(size=(6, 16))]
    assert change_points(E / np.linalg.norm(E, axis=1, keepdims=True), context=2, gap=1, threshold=0.5).tolist() == [8]


def test_windows_cover_the_end_and_input_shorter_than_one():
    assert window_starts(330, window=100, hop=50).tolist() == [0, 50, 100, 150, 200, 230]
    assert window_starts(40, window=100, hop=50).tolist() == [0]


@pytest.mark.parametrize("n", [100, 7 * SR + 37, 160 * 50])
def test_log_mel_in_blocks_is_the_log_mel(rng, n):
    y = rng.standard_normal(n).astype(np.float32)
    S = log_mel(y, config=FeatureConfig())
    assert np.allclose(
        np.concatenate(list(log_mel_stream([y], n_samples=len(y), config=FeatureConfig(), block_frames=7))),
        S,
        atol=1e-4,
    )


def test_speech_timeline_maps_speech_back_to_the_file():
    y = np.zeros(3 * SR, np.float32)
    y[SR // 2 : SR] = 0.1 * np.sin(np.arange(SR // 2) * 0.3)
    y[2 * SR : 2 * SR + SR // 4] = 0.1 * np.sin(np.arange(SR // 4) * 0.3)
    tl = SpeechTimeline(y, config=FeatureConfig())
    assert len(tl.intervals) == 2 and tl.joins[-1] == len(tl.speech)
    (s0, e0), (s1, e1) = tl.intervals
    assert abs(s0 - SR // 2) < 0.03 * SR and abs(s1 - 2 * SR) < 0.03 * SR
    assert tl.to_file(0, len(tl.speech)) == [(s0, e0), (s1, e1)]
    assert tl.to_file(10, tl.joins[1] + 5) == [(s0 + 10, e0), (s1, s1 + 5)]
    assert tl.pauses_s == pytest.approx([(s1 - e0) / SR])


def test_a_timeline_of_intervals_maps_a_stream_s_speech_back_to_it():
    tl = SpeechTimeline.of_intervals([[100, 400], [900, 1000]], sr=100)
    assert tl.n_speech == 400 and tl.joins.tolist() == [0, 300, 400]
    assert tl.to_file(250, 350) == [(350, 400), (900, 950)]
    assert tl.pauses_s == pytest.approx([5.0])


@pytest.mark.parametrize("decoder", ["viterbi", "changepoint"])
def test_windows_fed_in_pieces_give_the_turns_of_the_whole_file(group, default_extractor, decoder):
    """A file's windows fed a few at a time, or one at a time with turns final once 1.5 s of speech follow a
    change (as the live stream feeds them), give the turns of the file decoded at once."""
    y, _ = conversation()
    cfg, tc = default_extractor.feature_config, TurnConfig(decoder=decoder)
    whole = find_turns(y, group, default_extractor, config=tc)
    timeline = SpeechTimeline(y, config=cfg)
    E, bounds = embed_windows(default_extractor, timeline.speech, window_s=tc.window_s, hop_s=tc.hop_s)
    spans = bounds * cfg.hop_length
    for confirm_s, step in [(None, 7), (1.5, 1)]:
        turns, dec = [], TurnDecoder(group, features=cfg, config=tc, confirm_s=confirm_s)
        for i in range(0, len(E), step):
            final, current = dec.feed(E[i : i + step], spans[i : i + step], timeline)
            turns += final
        assert current == whole[-1]
        early = len(turns)
        assert turns + dec.finish(timeline) == whole, confirm_s
        assert early == 0 if confirm_s is None else early >= 3  # final while windows still come


@pytest.mark.parametrize("decoder, within_s", [("viterbi", 0.5), ("changepoint", 1.0)])
def test_turns_of_a_conversation_are_in_file_time(group, default_extractor, decoder, within_s):
    y, reference = conversation()
    turns = find_turns(y, group, default_extractor, config=TurnConfig(decoder=decoder))
    assert [t.speaker for t in turns] == [who for _, _, who in reference]
    for turn, (start, end, _) in zip(turns, reference):
        assert abs(turn.start_s - start) <= within_s and abs(turn.end_s - end) <= within_s, (turn, start, end)
        assert 0.5 < turn.score <= 1.0
    assert all(a.end_s <= b.start_s for a, b in pairwise(turns))
    assert turns[3].start_s - turns[2].end_s > 1.0  # the long pause belongs to nobody


def test_a_voice_outside_the_group_is_unknown(default_extractor):
    from fewshot.groups.svc import GroupSVC

    E = default_extractor.embed([spoken(n, 15.0) for n in ("ann", "cyd")], return_segments=True)
    clf = GroupSVC().fit(np.concatenate(E), np.repeat(["ann", "cyd"], [len(e) for e in E])).fitted_
    noise = np.random.default_rng(1).standard_normal(4 * SR).astype(np.float32) * 0.1
    y, _ = conversation([("ann", 4.0, 0.6)])
    turns = find_turns(np.r_[y, noise], clf, default_extractor, config=TurnConfig(unknown_cosine=0.3))
    assert [t.speaker for t in turns] == ["ann", "unknown"]


def test_too_little_speech_is_an_audio_error(group, default_extractor):
    y = np.zeros(2 * SR, np.float32)
    y[SR : SR + SR // 2] = synth_voice(**VOICES["ann"], seconds=0.5)
    with pytest.raises(AudioError, match="too little speech"):
        find_turns(y, group, default_extractor, source="short.wav")


def test_turn_config_is_checked():
    with pytest.raises(ValueError, match="decoder"):
        TurnConfig(decoder="hmm")
    with pytest.raises(ValueError, match="hop_s"):
        TurnConfig(window_s=1.0, hop_s=2.0)
    assert TurnConfig().pause_s(FeatureConfig(max_silence_s=0.7)) == 0.7  # the model's, unless given
    assert TurnConfig(max_pause_s=1.5).pause_s(FeatureConfig(max_silence_s=0.7)) == 1.5


def test_rttm_lines_are_one_speaker_record_per_turn():
    lines = rttm_lines([Turn(0.5, 2.25, "ann", 0.9), Turn(3.0, 4.5, "mary jo", 0.7)], file_id="my talk")
    assert lines == [
        "SPEAKER my_talk 1 0.500 1.750 <NA> <NA> ann <NA> <NA>",
        "SPEAKER my_talk 1 3.000 1.500 <NA> <NA> mary_jo <NA> <NA>",
    ]


def test_identify_segments_are_the_turns(default_extractor, tmp_path):
    from fewshot.identifier import SpeakerIdentifier

    sid = SpeakerIdentifier(default_extractor, store=tmp_path / "s.sqlite")
    for name in ESPEAK_VOICES:
        sid.enroll("g", name, spoken(name, 15.0))
    y, reference = conversation()
    turns = sid.turns("g", y)
    assert [t.speaker for t in turns] == [who for _, _, who in reference]
    assert sid.identify("g", y, segments=True).segments == turns
    assert sid.identify("g", y).segments == []
