"""What a sweep asks for, whatever the spelling: its grid (each key's values) and the key of one job.

A resumed sweep (:mod:`lossexp.sweeps.resume_check`, :mod:`lossexp.sweeps.resume_sweep`) compares the
grid it is asked for with the one its parent ran, and finds a job's earlier attempt by the job's key
(tag ``sweep.job_key``), so ``w=0.010,0.1`` is ``w=0.1,0.01`` and the order of the overrides does not
matter. No TensorFlow import.
"""
from __future__ import annotations

import hashlib
import json
from typing import Dict, FrozenSet, List, Sequence, Tuple

from lossexp.overrides import unreadable_override

#: overrides that may differ between the sweep and its resumption: where the store is
FREE_KEYS = ("tracking.uri",)


def _canonical(overrides: Sequence[str]) -> List[Tuple[str, Tuple[str, ...]]]:
    """Each override as (key, its values as Hydra prints them): ``w=0.010,0.1`` → (``w``, (0.01, 0.1))."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        raise unreadable_override(exc) from None
    return [(o.get_key_element(), tuple(o.sweep_string_iterator()) if o.is_sweep_override()
             else (o.get_value_element_as_str(),)) for o in parsed]


def grid(overrides: Sequence[str]) -> Dict[str, Tuple[str, ...]]:
    """The sweep ``overrides`` ask for: each key's values, in order of value (``hydra.*`` and
    :data:`FREE_KEYS` left out); the last of a key given twice."""
    found: Dict[str, Tuple[str, ...]] = {}
    for key, values in _canonical([o for o in overrides if not o.startswith(("hydra.", "hydra/"))]):
        if key.lstrip("+~") not in FREE_KEYS:
            found[key] = tuple(sorted(set(values)))
    return found


def sweep_grid(task_overrides: Sequence[str], params: Sequence[str] = ()) -> Dict[str, Tuple[str, ...]]:
    """The grid the basic sweeper runs: the config's ``hydra.sweeper.params``, then the task overrides,
    which win for a key given in both (as Hydra's ``BasicSweeper`` merges them)."""
    return grid([*params, *task_overrides])


def job_key(overrides: Sequence[str]) -> FrozenSet[Tuple[str, str]]:
    """What identifies one job of a sweep: its overrides' keys and values, in any order."""
    return frozenset((key, values[0]) for key, values in grid(overrides).items())


def job_digest(overrides: Sequence[str]) -> str:
    """:func:`job_key` as a tag value (``sweep.job_key``): a job's earlier attempt is one filtered search
    away — reading every child and parsing its overrides took 0.7 s of CPU a job at 400 children."""
    return hashlib.sha1(json.dumps(sorted(job_key(overrides))).encode()).hexdigest()
