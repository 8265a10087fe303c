"""The groups' table of ``lossexp compare``: per group the number of runs, the objective's mean ± standard
error and standard deviation, its difference from the baseline group with Welch's p-value (and the paired
test's, runs matched by seed, where at least two pair up), and each
component's final ``loss/<c>`` as mean ± standard error (on the group's second line, so that the table
fits 80 columns whatever the number of components)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

from rich import box
from rich.markup import escape
from rich.table import Table

from lossexp.reports.groups import Group
from lossexp.reports.stats import Summary
from lossexp.reports.table import _param_label


def mean_se(summary: Summary) -> str:
    """``0.1234 ± 0.0056`` (``0.1234`` for one run, empty for none)."""
    if summary.n == 0:
        return ""
    return f"{summary.mean:.4g}" + ("" if math.isnan(summary.se) else f" ± {summary.se:.2g}")


def _short(group: Group) -> str:
    """The group's label with keys shortened as the runs table shows them (``weight=0``, ``leave_out=None``)."""
    keys = list(group.params)
    shown = ",".join(f"{_param_label(k, keys)}={v}" for k, v in group.params.items() if v != "")
    return shown or group.label


def groups_table(groups: Sequence[Group], objective: str, base: Optional[Group], title: str,
                 over: Sequence[str] = ()) -> Table:
    """Two lines per group, as the runs table: its label, then (dim) each component's final ``loss/<c>``;
    beside them n, the objective's mean ± se and std, and against the baseline (marked) Δ and p."""
    # at least as wide as its title: a narrow table wrapped "… over loss.hist_avg.weight)" onto a second line
    table = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, min_width=len(title))
    table.add_column("group · final loss/<c>", overflow="fold", min_width=20)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column(objective, justify="right", no_wrap=True)
    table.add_column("std", justify="right", no_wrap=True)
    pairs = {id(g): g.paired_against(base, over) for g in groups} if base is not None else {}
    if base is not None:
        table.add_column("Δ", justify="right", no_wrap=True)
        table.add_column("p", justify="right", no_wrap=True)
    if any(pairs.values()):
        table.add_column("p pair", justify="right", no_wrap=True)
    for group in groups:
        parts = " · ".join(f"{c} {mean_se(s)}" for c, s in group.components.items() if s.n)
        label = escape(_short(group)) + (" [bold](baseline)[/]" if group is base else "")
        cells = [label + (f"\n[dim]{escape(parts)}[/]" if parts else ""), str(group.objective.n),
                 mean_se(group.objective), "" if math.isnan(group.objective.std) else f"{group.objective.std:.2g}"]
        if base is not None:
            test = group.against(base)
            diff = group.objective.mean - base.objective.mean
            cells += ["" if group is base or math.isnan(diff) else f"{diff:+.2g}",
                      "" if test is None else f"{test.p:.2g}"]
        if any(pairs.values()):
            cells.append("" if pairs[id(group)] is None else f"{pairs[id(group)].p:.2g}")
        table.add_row(*cells)
    return table
