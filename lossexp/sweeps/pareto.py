"""The Pareto-optimal points of several objectives (each minimised or maximised)."""
from __future__ import annotations

from typing import Dict, List, Sequence


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """``a`` is at least as good as ``b`` in every objective and better in one."""
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    no_worse = all(s * x <= s * y for s, x, y in zip(signs, a, b))
    return no_worse and any(s * x < s * y for s, x, y in zip(signs, a, b))


def front(points: Dict[str, Sequence[float]], directions: Sequence[str]) -> List[str]:
    """The keys of ``points`` that no other point dominates, in the order given."""
    return [key for key, value in points.items()
            if not any(dominates(other, value, directions) for k, other in points.items() if k != key)]
