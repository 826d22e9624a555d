"""Text output and RTTM files show every file name and label as itself: no two files share an RTTM id,
and no newline, escape or bidirectional character reaches the terminal or the RTTM raw."""

from fewshot.names import shown
from fewshot.turns.decoder import Turn, rttm_file_ids, rttm_lines


def test_files_of_the_same_name_in_two_folders_get_two_rttm_ids():
    ids = rttm_file_ids(["a.wav", "d2/a.wav", "/data/b.flac", "a.wav"])
    assert len(set(ids)) == 4 and ids[2] == "b"
    assert rttm_file_ids(["/x/talk.wav", "/y/other.mp3"]) == ["talk", "other"]  # the stem when it is unique


def test_rttm_fields_hold_no_raw_bidi_control_or_white_space():
    (line,) = rttm_lines([Turn(0.0, 1.0, "ann\u202eevil", 0.9)], file_id="my\nfile\u202e")
    fields = line.split(" ")
    assert len(fields) == 10 and line.isprintable()
    assert "\u202e" not in line and "\\u202e" in fields[7] and fields[1] == "my_file\\u202e"


def test_shown_escapes_what_would_act_on_a_terminal():
    assert shown("ann.wav") == "ann.wav" and shown("Zo\u00eb") == "Zo\u00eb"
    for raw in ("a\nb.wav", "x\x1b[2J.wav", "evil\u202egnp.wav", "a\u200bb"):
        out = shown(raw)
        assert out.isprintable() and "\u202e" not in out and "\u200b" not in out and "\n" not in out
