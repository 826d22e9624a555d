"""The enrollment store: groups, people and their voiceprints in one private SQLite file.

- :mod:`.enrollments`: :class:`~.enrollments.EnrollmentStore`, every change one transaction;
- :mod:`.file`: the SQLite file itself (checked, private, shared safely);
- :mod:`.schema`: its tables and the migrations of older stores;
- :mod:`.upgrade`: groups enrolled with another extractor, re-embedded or moved to the new id.
"""
