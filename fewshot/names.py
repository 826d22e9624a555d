"""Group and person names: the one rule every name goes through wherever it comes in.

A name is stored, compared and printed in Unicode NFC without surrounding
whitespace, so ``"ann"``, ``"ann "`` and a decomposed ``"ann"`` are one person;
characters that would act on a terminal or reorder text are refused.
"""

from __future__ import annotations

import unicodedata

from .errors import InvalidNameError

#: Bidirectional classes of the characters that reorder the text around them.
_BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


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
        For an empty name, or one holding control characters (line breaks,
        escape sequences, bidirectional overrides).
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"a {kind} name must be text, given {type(name).__name__}")
    out = unicodedata.normalize("NFC", name).strip()
    if not out:
        raise InvalidNameError(f"the {kind} name is empty")
    for ch in out:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or unicodedata.bidirectional(ch) in _BIDI_CONTROLS:
            raise InvalidNameError(f"the {kind} name {out!r} holds the control character U+{ord(ch):04X}; "
                                   "use letters, digits, spaces and punctuation")
    return out
