"""Seeds summarised: a sample's mean, standard deviation and standard error, Welch's t-test of two groups
(unequal variances) and the paired t-test of runs matched by seed, for ``lossexp compare`` when a sweep
repeats each setting over seeds.

The p-value comes from the t distribution's CDF, SciPy's ``scipy.special.stdtr`` (SciPy is installed
with scikit-learn; ``scipy.special`` imports in 0.15 s of CPU, ``scipy.stats`` in 0.4 s more), imported
only when a test is made.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Summary:
    """``n`` values (non-finite ones left out): mean, sample standard deviation (n − 1) and standard error
    of the mean (std / √n); std and se are NaN for a single value."""
    n: int
    mean: float
    std: float
    se: float


@dataclass(frozen=True)
class TTest:
    """A t-test of a difference of means: the difference, t, the degrees of freedom (Welch–Satterthwaite's
    for :func:`welch`, n − 1 for :func:`paired`) and the two-sided p-value."""
    diff: float
    t: float
    df: float
    p: float


def summarize(values: Sequence[Optional[float]]) -> Summary:
    """The :class:`Summary` of the finite values (a diverged seed's NaN or inf, a missing one's None, is
    not averaged in: ``n`` says how many were)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(kept)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan)
    mean = statistics.mean(kept)  # exact (rationals): three seeds' 0.2 were 0.2 ± 2e-17 by fsum / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan)
    std = statistics.stdev(kept, mean)
    return Summary(n, mean, std, std / math.sqrt(n))


def welch(a: Summary, b: Summary) -> Optional[TTest]:
    """Welch's t-test of a against b; None when it is undefined (fewer than two values in a group, or
    no spread in either)."""
    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
    if va + vb == 0:
        return None
    diff = a.mean - b.mean
    t = diff / math.sqrt(va + vb)
    return _two_sided(diff, t, (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1)))


def paired(differences: Sequence[Optional[float]]) -> Optional[TTest]:
    """The paired t-test of the mean of ``differences`` (each seed's run minus the baseline's run of the same
    seed: the seed's own effect cancels); None for fewer than two finite differences or none of them apart."""
    d = summarize(differences)
    if d.n < 2 or d.se == 0:
        return None
    return _two_sided(d.mean, d.mean / d.se, d.n - 1)


def _two_sided(diff: float, t: float, df: float) -> TTest:
    from scipy.special import stdtr

    return TTest(diff, t, df, float(2 * stdtr(df, -abs(t))))
