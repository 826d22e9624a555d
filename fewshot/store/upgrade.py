"""Groups enrolled with another extractor: re-embedded from kept audio, or moved to the new id.

A group remembers the id of the extractor that made its embeddings
(:func:`fewshot.model.extractor.model_identity`). When the extractor in use has
another id:

- a group enrolled under one of this same model's former ids (the checksum of
  its Keras file alone, the id before the configuration was part of it; the id
  before the LiteRT files were part of it) is moved to the current id: its
  embeddings are those this model makes;
- a group enrolled with an extractor the current model ships an aligner from
  (:mod:`fewshot.model.align`) is mapped into the current model's space, once, and
  its members are marked as running on mapped voiceprints;
- a group whose members' speech is kept (``--keep-audio``) is upgraded by
  :func:`upgrade_group`: every member re-embedded with the current extractor,
  in one transaction (a failure leaves the group as it was); this also
  replaces mapped voiceprints by the current model's own;
- otherwise the group must be enrolled again, and the message says how.
"""

from __future__ import annotations

import numpy as np

from ..errors import IncompatibleModelError, StoreBusyError
from ..model import align, modeldir

#: How many times an upgrade reads and re-embeds a group that another process changed meanwhile.
UPGRADE_ATTEMPTS = 3


def former_ids(extractor) -> tuple[str, ...]:
    """The ids the same weights had before (:func:`fewshot.model.modeldir.former_ids`)."""
    if "sha256" not in extractor.meta:
        return ()
    return modeldir.former_ids(extractor.meta)


def upgrade_group(sid, group: str, *, progress=None) -> dict:
    """Re-embed every member of ``group`` from their kept audio with ``sid``'s extractor.

    Returns
    -------
    dict
        ``from`` and ``to`` (extractor ids), ``speakers`` (names), ``seconds`` (speech re-embedded).

    The group is written only if nobody changed it since it was read (an
    enrollment meanwhile); otherwise it is read and re-embedded again.

    Raises
    ------
    IncompatibleModelError
        When a member's audio was not kept (nothing is changed then).
    StoreBusyError
        When the group changed during each of :data:`UPGRADE_ATTEMPTS` attempts (nothing is changed then).
    """
    for _ in range(UPGRADE_ATTEMPTS):
        result = _upgrade_once(sid, group, progress=progress)
        if result is not None:
            return result
    raise StoreBusyError(
        f"group {group!r} changed while it was being upgraded, {UPGRADE_ATTEMPTS} times "
        "(someone is enrolling into it); nothing was changed: run the upgrade again when they are done"
    )


def _upgrade_once(sid, group: str, *, progress=None) -> dict | None:
    """:func:`upgrade_group`'s work, or ``None`` when the group changed before it could be written."""
    store, ex = sid.store, sid.extractor
    expect = store.group_revision(group)
    old_id = expect[0]
    members = store.speakers(group)
    missing = [m.name for m in members if not m.audio_kept]
    if missing:
        raise IncompatibleModelError(
            f"group {group!r} cannot be upgraded: the speech of {', '.join(missing)} was not "
            f"kept; {reenroll_hint(group)}"
        )
    embeddings, seconds = {}, 0.0
    for m in progress(members) if progress is not None else members:
        y = np.concatenate(store.kept_audio(group, m.name))
        E = ex.embed([y], return_segments=True)[0]
        C = None
        if sid.classifier_config.multi_condition:
            from ..audio.degrade import enrollment_copies

            C = np.concatenate(ex.embed(enrollment_copies(y, sr=ex.feature_config.sr), return_segments=True))
        embeddings[m.name] = (E, C)
        seconds += len(y) / ex.feature_config.sr
    if not store.rewrite_group(group, extractor_id=ex.model_id, embeddings=embeddings, expect=expect):
        return None
    return {"from": old_id, "to": ex.model_id, "speakers": sorted(embeddings), "seconds": seconds}


def move_to_current_id(store, group: str, stored: str, extractor) -> None:
    """Re-key a group enrolled under ``extractor``'s former id ``stored``; its embeddings stay (nothing is
    written when another process changed the group meanwhile: it moves it, or the next use does)."""
    expect = store.group_revision(group)
    X, y, is_copy = store.embeddings(group, extractor_id=stored, copies=True)
    per = {n: (X[(y == n) & ~is_copy], X[(y == n) & is_copy]) for n in np.unique(y)}
    store.rewrite_group(group, extractor_id=extractor.model_id, embeddings=per, expect=expect)


def adopt_group(store, group: str, stored: str, extractor) -> None:
    """Make ``group``, enrolled with the extractor ``stored``, usable with ``extractor``, or say what to do.

    Raises
    ------
    IncompatibleModelError
        When the group is neither under ``extractor``'s former id nor mappable by an aligner it ships
        (the message says how to upgrade or re-enroll).
    """
    if stored in former_ids(extractor):
        move_to_current_id(store, group, stored, extractor)
        return
    aligner = align.find_aligner(extractor, stored)
    if aligner is None:
        raise IncompatibleModelError(mismatch_message(store, group, stored, extractor))
    align.map_group(store, group, stored, extractor, aligner)


def mapped_note(group: str, members) -> str | None:
    """What ``fewshot groups show`` says about members whose voiceprints were mapped, or ``None``."""
    mapped = [m for m in members if m.mapped_from]
    if not mapped:
        return None
    sources = ", ".join(sorted({m.mapped_from for m in mapped}))
    head = (
        f"{len(mapped)} of {len(members)} {'person' if len(members) == 1 else 'people'} run on voiceprints "
        f"mapped from extractor {sources}, less accurate than the extractor's own"
    )
    if all(m.audio_kept for m in mapped):
        return f"{head}; their speech is kept: run `fewshot groups upgrade {group}` to re-embed it"
    return f"{head}; {reenroll_hint(group)}"


def reenroll_hint(group: str) -> str:
    return (
        f"re-enroll them: `fewshot enroll --group {group} --speaker NAME FILE... --replace --keep-audio` "
        f"(with --keep-audio, the next model upgrades the group by itself: `fewshot groups upgrade {group}`)"
    )


def mismatch_message(store, group: str, stored: str, extractor) -> str:
    """What to do about a group enrolled with the extractor ``stored``."""
    head = (
        f"group {group!r} was enrolled with extractor {stored}, but the extractor in use is "
        f"{extractor.model_id}; embeddings of two extractors cannot be mixed"
    )
    if all(m.audio_kept for m in store.speakers(group)):
        return f"{head}. Its speech is kept: run `fewshot groups upgrade {group}` to re-embed it"
    return f"{head}; {reenroll_hint(group)}"
