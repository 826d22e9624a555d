"""The package's own exceptions."""


class FewshotError(Exception):
    """Base class of every error fewshot raises on purpose."""


class AudioError(FewshotError, ValueError):
    """Audio that cannot be used: missing, unreadable, empty, silent, too short."""

    def __init__(self, source, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class NotEnrolledError(FewshotError, LookupError):
    """A group or speaker that the enrollment store does not hold."""


class IncompatibleModelError(FewshotError):
    """A model or store written with another feature config, extractor or version."""


class CorruptModelError(FewshotError):
    """A model file that is damaged or does not match its checksum."""


class DuplicateAudioError(AudioError):
    """Audio already enrolled for that person (the same file, by its SHA-256)."""


class IncoherentEnrollmentError(AudioError):
    """Enrollment speech that does not sound like one person throughout (:mod:`fewshot.groups.selfcheck`)."""

    def __init__(self, source, finding: str):
        self.finding = finding
        super().__init__(source, f"{finding} Record the person alone, or enroll it anyway with --force (force=True)")


class InvalidNameError(FewshotError, ValueError):
    """A group or person name that is empty or holds control characters."""


class StoreError(FewshotError):
    """An enrollment store that cannot be used as it is."""


class NotAStoreError(StoreError):
    """A ``--store`` path that is neither missing nor a fewshot store."""


class StoreBusyError(StoreError):
    """Another process kept the store locked for longer than the busy timeout."""


class StoreFullError(StoreError):
    """The disk holding the store is full: a write was rolled back."""


class StoreReadOnlyError(StoreError):
    """A write to a store that can only be read (its file, folder or disk is read-only)."""
