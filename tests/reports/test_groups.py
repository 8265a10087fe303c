"""Runs grouped by the keys they differ in, and the default baseline: the one group whose swept weight is 0."""
import pytest

from lossexp.errors import ConfigError
from lossexp.reports.groups import baseline, group_rows
from lossexp.reports.query import RunRow


def _row(run_id: str, objective: float, **params: str) -> RunRow:
    name = ",".join(f"{k}={v}" for k, v in params.items())
    return RunRow(run_id, name, "FINISHED", "hist_avg", params, objective, None, objective, 1.0, None)


def test_groups_keep_the_runs_order_and_are_labelled_like_a_sweeps_children():
    rows = [_row("a", 1.0, w="0.0", s="0"), _row("b", 3.0, w="0.1", s="0"), _row("c", 2.0, w="0.0", s="1")]
    groups = group_rows(rows, ["w"])
    assert [(g.label, [r.run_id for r in g.rows]) for g in groups] == [("w=0.0", ["a", "c"]), ("w=0.1", ["b"])]
    assert groups[0].objective.mean == 1.5 and groups[0].objective.n == 2
    assert baseline(groups, ["w"], None) is None  # "w" is no component's weight: no default baseline
    [seeds_only] = group_rows(rows, [])  # a sweep over the seed alone: one group, not named after its first run
    assert seeds_only.label == "all 3 runs"


def test_a_groups_component_values_are_of_the_runs_its_objective_counts():
    """A killed job (or a failed one retried) has final component values of fewer epochs, and no objective: its
    values were averaged into the group's breakdown beside n=1 (the finished run alone)."""
    from dataclasses import replace

    finished = replace(_row("a", 0.5, w="0.3", s="0"), component_losses={"task": 0.29, "spread": 0.221})
    killed = replace(_row("b", 0.0, w="0.3", s="1"), status="KILLED", objective=None,
                     component_losses={"task": 0.35, "spread": 0.219})
    [group] = group_rows([finished, killed], ["w"])
    assert group.objective.n == 1 and group.components["spread"].n == 1
    assert group.components["spread"].mean == 0.221 and group.components["task"].mean == 0.29


def test_the_default_baseline_is_the_single_group_whose_weight_is_zero():
    rows = [_row(f"{w}{v}", 1.0, **{"loss.a.weight": w, "loss.b.weight.value": v}) for w in "01" for v in "01"]
    one = group_rows(rows[:2] + rows[3:], ["loss.a.weight"])
    assert baseline(one, ["loss.a.weight"], None).label == "loss.a.weight=0"
    both = group_rows(rows, ["loss.a.weight", "loss.b.weight.value"])
    assert baseline(both, ["loss.a.weight", "loss.b.weight.value"], None) is None  # 0 in three groups: none is "the" one
    given = baseline(both, ["loss.a.weight", "loss.b.weight.value"], ["loss.a.weight=0.0", "loss.b.weight.value=1"])
    assert given.label == "loss.a.weight=0,loss.b.weight.value=1"
    with pytest.raises(ConfigError, match="matches 2 groups"):
        baseline(both, ["loss.a.weight", "loss.b.weight.value"], ["loss.a.weight=1"])


def test_an_ablations_baseline_is_the_whole_composition():
    rows = [_row(f"{c}{s}", 1.0 + s, **{"ablation.leave_out": c, "trainer.seed": str(s)})
            for c in ("None", "hist_avg", "activity") for s in (0, 1)]
    groups = group_rows(rows, ["ablation.leave_out"])
    assert baseline(groups, ["ablation.leave_out"], None).label == "ablation.leave_out=None"


def test_the_paired_test_matches_runs_by_seed():
    from scipy.stats import ttest_rel

    base = [_row(f"b{s}", v, w="0", s=str(s)) for s, v in enumerate([1.0, 2.0, 3.0])]
    other = [_row(f"o{s}", v, w="1", s=str(s)) for s, v in reversed(list(enumerate([1.5, 2.4, 3.6])))]
    groups = group_rows(base + other, ["w"])
    test = groups[1].paired_against(groups[0], ["s"])  # seed 2's run first: paired by seed, not by order
    assert test.p == pytest.approx(ttest_rel([1.5, 2.4, 3.6], [1.0, 2.0, 3.0]).pvalue)
    assert groups[0].paired_against(groups[0], ["s"]) is None and groups[1].paired_against(groups[0], []) is None
