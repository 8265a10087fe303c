"""The CLI freezes the objects its imports made, once a process."""
from __future__ import annotations

import gc

from lossexp import imported_objects


def test_only_the_first_call_freezes():
    imported_objects.freeze_once.cache_clear()
    try:
        imported_objects.freeze_once()
        frozen = gc.get_freeze_count()
        later = [[] for _ in range(1000)]  # what a finished job leaves: not frozen by a second call
        imported_objects.freeze_once()
        assert frozen > 0 and gc.get_freeze_count() == frozen
        assert later
    finally:
        gc.unfreeze()
        imported_objects.freeze_once.cache_clear()
