"""Pareto-optimal points under mixed directions."""
from lossexp.sweeps.pareto import dominates, front


def test_front_keeps_the_points_no_other_dominates():
    points = {"a": [1.0, 5.0], "b": [2.0, 2.0], "c": [3.0, 3.0], "d": [5.0, 1.0], "e": [2.0, 2.0]}
    assert front(points, ["minimize", "minimize"]) == ["a", "b", "d", "e"]  # equal points do not dominate
    assert front(points, ["maximize", "maximize"]) == ["a", "c", "d"]
    assert dominates([1.0, 9.0], [2.0, 1.0], ["minimize", "maximize"])
    assert not dominates([1.0, 1.0], [1.0, 1.0], ["minimize", "minimize"])
