"""The batch manifest, OUT/manifest.sqlite: one row per recording, the source of truth for resume.

Only the coordinating process writes it. A recording is `done` only after its outputs are in
place, so a batch killed at any moment resumes without losing or redoing finished work.

- schema.py: the tables, their versions and migrations, the checks that a manifest is whole
- connection.py: a connection that stores any name a filesystem holds
- store.py: `Manifest`: open, transactions, each recording's row as a run writes it
- plan.py: planning a run in SQL and streaming what it has to do (a mixin of `Manifest`)
- stats.py: reading it whole: rows by name, counts and hours (a mixin of `Manifest`)
- fingerprint.py: an input's content fingerprint, the settings' config hash
- lock.py: the lock on OUT for the length of a run
"""

from .fingerprint import config_hash, fingerprint
from .lock import LockedError, OutputLock
from .plan import Plan
from .schema import (
    GONE,
    SCHEMA_VERSION,
    ManifestDamaged,
    ManifestNewer,
    ManifestUnwritable,
)
from .stats import FileRow
from .store import Manifest

__all__ = [
    "GONE",
    "SCHEMA_VERSION",
    "FileRow",
    "LockedError",
    "Manifest",
    "ManifestDamaged",
    "ManifestNewer",
    "ManifestUnwritable",
    "OutputLock",
    "Plan",
    "config_hash",
    "fingerprint",
]
