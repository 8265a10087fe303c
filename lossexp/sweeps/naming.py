"""Child run names from a job's overrides: ``loss=hist_avg+activity,optimizer.learning_rate=0.01``.

Only the keys the sweep varies appear (the callback passes them as ``tracking.sweep_keys``), so
that names are short and, in a grid sweep, distinct; a tuning sweeper (Optuna) may propose the
same values twice, so its trials are numbered (``#3 loss.activity.weight=0.0123``). The same job
always gets the same name.
"""
from __future__ import annotations

import re
from typing import Iterable, List, Optional, Sequence

_LOSS_GROUP = re.compile(r"\[([^\]]*)\]")
_FLOAT = re.compile(r"^-?\d+\.\d{5,}(e-?\d+)?$")


def override_key(override: str) -> str:
    """``+loss.activity.weight=0.1`` → ``loss.activity.weight``."""
    return override.partition("=")[0].lstrip("~+").strip()


def _pretty_value(key: str, value: str) -> str:
    value = value.strip()
    if key == "loss" and value.startswith("["):  # loss=[a,b] → a+b; a sweep loss=[a,b],[c] → a+b,c
        groups = _LOSS_GROUP.findall(value)
        return ",".join("+".join(n.strip() for n in g.split(",") if n.strip()) or "none" for g in groups)
    if _FLOAT.match(value):
        return f"{float(value):.4g}"
    return value


def pretty_override(override: str) -> str:
    """An override as a user would type it: ``loss=[hist_avg,activity]`` → ``loss=hist_avg+activity``."""
    key = override_key(override)
    return f"{key}={_pretty_value(key, override.partition('=')[2])}"


def child_name(task_overrides: Sequence[str], sweep_keys: Iterable[str], job_num: Optional[int] = None,
               numbered: bool = False) -> str:
    """The run name of a sweep job; all its overrides when no key is known to vary."""
    keys = set(sweep_keys)
    last = {override_key(o): o for o in task_overrides}  # a key set twice (a whole mapping: null, then it) is its last
    task_overrides = [o for o in task_overrides if last[override_key(o)] is o]
    chosen: List[str] = [o for o in task_overrides if override_key(o) in keys] or list(task_overrides)
    name = ",".join(pretty_override(o) for o in chosen) or "defaults"
    if numbered and job_num is not None:
        name = f"#{job_num} {name}"
    return name
