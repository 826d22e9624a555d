"""Group and person names: the one rule every name goes through wherever it comes in.

A name is stored and printed in Unicode NFC without surrounding whitespace, as
first given. Two names are the same name when their keys (:func:`name_key`:
NFKC, case folded, runs of spaces as one) are equal, so ``"Ann"``, ``"ann"``,
a full-width ``"ａｎｎ"`` and a decomposed ``"ann"`` are one person; the store
compares names by key (its ``NAME`` collation, :mod:`fewshot.store.file`).

Refused, so that a name shows what it is: characters that would act on a
terminal or reorder text (controls, bidirectional marks and overrides),
invisible ones (zero-width spaces and joiners, the byte-order mark, soft
hyphens: every format character), private-use and unassigned code points,
letters of two alphabets in one name (Latin ``a`` beside Cyrillic ``а``: the
one name that looks like another; Chinese, Japanese and Korean characters may
stand beside Latin), and names over :data:`MAX_NAME_CHARS` characters.
"""

from __future__ import annotations

import unicodedata

from .errors import InvalidNameError

#: The longest name, in characters.
MAX_NAME_CHARS = 64
#: Categories refused anywhere in a name: controls, format characters (zero-width, bidirectional marks, BOM,
#: soft hyphen), surrogates, private use, unassigned, line and paragraph separators.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
#: Bidirectional classes of the characters that reorder the text around them.
_BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
#: Scripts that may stand beside Latin in one name (written together in Chinese, Japanese and Korean).
_EAST_ASIAN = {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "IDEOGRAPHIC", "HALFWIDTH"}


def normalize_name(name, *, kind: str = "name") -> str:
    """A group or person name as stored: Unicode NFC, surrounding whitespace removed.

    Parameters
    ----------
    name : str
    kind : str
        What the name is for the error message (``"group"``, ``"person"``).

    Raises
    ------
    InvalidNameError
        For an empty name, one over :data:`MAX_NAME_CHARS` characters, or one
        holding control, invisible, bidirectional, private-use or unassigned
        characters, or letters of two alphabets.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"a {kind} name must be text, given {type(name).__name__}")
    out = unicodedata.normalize("NFC", name).strip()
    if not out:
        raise InvalidNameError(f"the {kind} name is empty")
    if len(out) > MAX_NAME_CHARS:
        raise InvalidNameError(
            f"the {kind} name {out[:20]!r}... is {len(out)} characters long; at most {MAX_NAME_CHARS}"
        )
    for ch in out:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES or unicodedata.bidirectional(ch) in _BIDI_CONTROLS:
            raise InvalidNameError(
                f"the {kind} name {out!a} holds the invisible or control character "
                f"U+{ord(ch):04X}; use letters, digits, spaces and punctuation"
            )
    scripts = {_script(ch) for ch in unicodedata.normalize("NFKC", out) if ch.isalpha()} - {None}
    if len(scripts - _EAST_ASIAN) > 1:
        raise InvalidNameError(
            f"the {kind} name {out!a} mixes letters of {' and '.join(sorted(scripts))}, "
            "so it can look like another name; write it in one alphabet"
        )
    return out


def name_key(name: str) -> str:
    """What two names must share to be the same name: NFKC, case folded, runs of whitespace as one space."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def shown(text) -> str:
    """``text`` as it may be printed on a terminal or written to a text record: every control, format,
    bidirectional, separator, private-use or unassigned character as a ``\\uXXXX`` escape, a backslash doubled."""
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif (
            unicodedata.category(ch) in _REFUSED_CATEGORIES
            or unicodedata.bidirectional(ch) in _BIDI_CONTROLS
            or not ch.isprintable()
        ):
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def compare(a: str, b: str) -> int:
    """``-1``, ``0`` or ``1`` as ``a``'s key sorts before, with or after ``b``'s (the store's ``NAME`` collation)."""
    ka, kb = name_key(a), name_key(b)
    return (ka > kb) - (ka < kb)


def _script(ch: str) -> str | None:
    """The script of a letter, as the first word of its Unicode name (``"LATIN"``, ``"CYRILLIC"``, ...)."""
    try:
        return unicodedata.name(ch).split()[0]
    except ValueError:
        return None
