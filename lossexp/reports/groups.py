"""Runs grouped for ``lossexp compare``: the runs that differ only in the keys averaged over (``--over``,
by default ``trainer.seed``) are one group, summarised by the mean ± standard error of its objective and of
each component's final value; a baseline group (``--baseline KEY=VALUE``, or the one whose swept weight
is 0, or an ablation's whole composition) is what every other group's objective is tested against: Welch's
t-test, and the paired t-test of the runs with the same seed (the seed's own effect cancels: an ablation
of 2 seeds gave p 0.965 unpaired for a difference every seed showed)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from lossexp.errors import ConfigError
from lossexp.reports.query import RunRow
from lossexp.reports.stats import Summary, TTest, paired, summarize, welch

#: the key a seeds sweep varies, averaged over unless ``--over`` names others
SEED_KEY = "trainer.seed"
#: a swept key whose group at 0 is the default baseline (a component's weight)
_WEIGHT = re.compile(r"\.weight(\.value)?$")
#: ``lossexp ablate``'s key, and its values for the whole composition (nothing left out): that group is the baseline
LEAVE_OUT, WHOLE = "ablation.leave_out", ("None", "null")


@dataclass
class Group:
    """The runs with the same values of the compared keys (``params``), and their summaries."""
    label: str
    params: Dict[str, str]
    rows: List[RunRow]
    objective: Summary = field(init=False)
    components: Dict[str, Summary] = field(init=False)

    def __post_init__(self) -> None:
        self.objective = summarize([r.objective for r in self.rows])
        # of the runs the objective counts (those that finished): a run stopped or failed part way (a killed job,
        # a failed one retried) has final component values too, of fewer epochs
        counted = [r for r in self.rows if r.objective is not None]
        names = sorted({c for r in counted for c in r.component_losses})
        self.components = {c: summarize([r.component_losses.get(c) for r in counted]) for c in names}

    def against(self, baseline: "Group") -> Optional[TTest]:
        """Welch's test of this group's objective against the baseline's (None: undefined, or itself)."""
        return None if baseline is self else welch(self.objective, baseline.objective)

    def paired_against(self, baseline: "Group", over: Sequence[str]) -> Optional[TTest]:
        """The paired test of this group's objective against the baseline's, run by run with the same values of
        ``over`` (the same seed); None when fewer than two runs pair up, a value pairs several runs, or itself."""
        if baseline is self or not over:
            return None
        mine, theirs = _by(self.rows, over), _by(baseline.rows, over)
        if mine is None or theirs is None:
            return None
        return paired([mine[k] - theirs[k] for k in mine.keys() & theirs.keys()
                       if mine[k] is not None and theirs[k] is not None])


def _by(rows: Sequence[RunRow], over: Sequence[str]) -> Optional[Dict[tuple, Optional[float]]]:
    """Each run's objective by its values of ``over``; None when two runs share them (no pairing)."""
    found = {tuple(r.params.get(k, "") for k in over): r.objective for r in rows}
    return found if len(found) == len(rows) else None


def over_keys(keys: Sequence[str], over: Optional[Sequence[str]], known: Sequence[str]) -> List[str]:
    """The keys averaged over: ``over`` as given (each must be a param of the runs, ``known``), else
    ``trainer.seed`` when it varies among them."""
    if over is None:
        return [SEED_KEY] if SEED_KEY in keys else []
    for key in over:
        if key not in known:
            choices = ", ".join(keys) or "(none: the runs differ in no param)"
            raise ConfigError(f"Invalid value for --over: {key!r} is not a param of the compared runs; "
                              f"the keys that vary among them are {choices}")
    return list(over)


def group_rows(rows: Sequence[RunRow], keys: Sequence[str]) -> List[Group]:
    """One group per distinct value of ``keys`` (runs in their order; a group where its first run is);
    labelled ``key=value,…`` as a sweep's child is named (with no keys: ``all N runs``, or the run's name)."""
    found: Dict[tuple, List[RunRow]] = {}
    for row in rows:
        found.setdefault(tuple(row.params.get(k, "") for k in keys), []).append(row)
    groups = []
    for values, members in found.items():
        named = ",".join(f"{k}={v}" for k, v in zip(keys, values) if v != "")
        label = named or (members[0].name if len(members) == 1 else f"all {len(members)} runs")
        groups.append(Group(label, dict(zip(keys, values)), members))
    return groups


def _same(a: str, b: str) -> bool:
    """``0`` and ``0.0`` are the same value of a numeric key."""
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def zero_groups(groups: Sequence[Group]) -> List[Group]:
    """The groups whose swept weight is 0, or, of an ablation, that leave nothing out: a default baseline when
    there is one alone."""
    return [g for g in groups if any(_WEIGHT.search(k) and _same(v, "0") or k == LEAVE_OUT and v in WHOLE
                                     for k, v in g.params.items())]


def baseline(groups: Sequence[Group], keys: Sequence[str], given: Optional[Sequence[str]]) -> Optional[Group]:
    """The group ``given`` (``KEY=VALUE`` each) names, else the one group whose swept weight is 0 or, of an
    ablation, that leaves nothing out (None: no such single group)."""
    if not given:
        zero = zero_groups(groups)
        return zero[0] if len(zero) == 1 and len(groups) > 1 else None
    wanted = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or key not in keys:
            raise ConfigError(f"Invalid value for --baseline: {item!r}: expected KEY=VALUE with KEY one of "
                              f"{', '.join(keys) or '(none: the runs are not grouped by any key)'}")
        wanted[key] = value
    matches = [g for g in groups if all(_same(g.params.get(k, ""), v) for k, v in wanted.items())]
    if len(matches) != 1:
        found = "no group" if not matches else f"{len(matches)} groups"
        raise ConfigError(f"Invalid value for --baseline: {' '.join(given)} matches {found}; the groups are "
                          + "; ".join(g.label for g in groups))
    return matches[0]
