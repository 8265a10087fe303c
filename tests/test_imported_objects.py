"""The CLI freezes the objects its imports made, once a process."""
from __future__ import annotations

import gc

from lossexp import imported_objects


def collected(obj: object) -> bool:
    """Whether the collector's passes still see ``obj`` (a frozen object is in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_only_the_first_call_freezes():
    imported_objects.freeze_once.cache_clear()
    try:
        before = []  # alive at the first call: frozen
        imported_objects.freeze_once()
        after = []  # what a finished job leaves: not frozen by a second call
        imported_objects.freeze_once()
        assert not collected(before) and collected(after)
    finally:
        gc.unfreeze()
        imported_objects.freeze_once.cache_clear()


def test_no_collection_while_importing_then_the_collector_as_it_was():
    passes = []

    def count(phase, info):
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with imported_objects.uncollected():
            cycles = [[[]] for _ in range(50_000)]  # as an import allocates: gen-0 passes at every 700
            for cycle in cycles:
                cycle[0].append(cycle)
            assert not gc.isenabled() and passes == []
        assert gc.isenabled()
        gc.disable()
        with imported_objects.uncollected():
            pass
        assert not gc.isenabled()  # a collector its user turned off stays off
    finally:
        gc.enable()
        gc.callbacks.remove(count)
