"""VEEGAN's ring metrics on hand-made point sets, with the numbers worked out by hand."""
import numpy as np
import pytest

from lossexp.data.ring import modes
from lossexp.evaluation.ring import score

MODES = modes(2.0)  # mode k at 2·(cos kπ/4, sin kπ/4)


def test_quality_is_within_three_std_of_the_nearest_mode_and_coverage_counts_its_modes():
    std = 0.1  # high quality: distance <= 0.3
    points = np.array([
        MODES[0] + [0.1, 0.0],    # 0.1 from mode 0: high quality
        MODES[0] + [0.0, 0.29],   # 0.29 from mode 0: high quality (mode 0 counted once)
        MODES[2] + [0.31, 0.0],   # 0.31 from mode 2, its nearest: not high quality, mode 2 not covered
        MODES[5],                 # on mode 5: high quality
        [0.0, 0.0],               # the centre, 2.0 from every mode: not high quality
    ])
    result = score(points, MODES, std)
    assert result.modes_covered == 2
    assert result.high_quality == pytest.approx(60.0)
    assert result.per_mode == (2, 0, 0, 0, 0, 1, 0, 0)  # high-quality points only, by nearest mode


def test_one_point_on_each_mode_covers_all_eight():
    result = score(MODES + 0.01, MODES, std=0.02)  # each 0.01·√2 ≈ 0.014 <= 0.06 from its mode
    assert result.modes_covered == 8 and result.high_quality == pytest.approx(100.0)


def test_a_point_covers_only_its_nearest_mode_even_when_others_are_within_three_std():
    # std 1: every mode is within 3 of the centre, but the point's nearest mode is mode 4, (-2, 0).
    result = score(np.array([[-0.1, 0.05]]), MODES, std=1.0)
    assert result.modes_covered == 1 and result.high_quality == pytest.approx(100.0)


def test_collapsed_far_away_and_non_finite_samples_score_zero():
    far = np.full((2500, 2), 10.0)
    assert score(far, MODES, std=0.02).modes_covered == 0 and score(far, MODES, std=0.02).high_quality == 0.0
    nan = np.full((10, 2), np.nan)
    assert score(nan, MODES, std=0.02).modes_covered == 0 and score(nan, MODES, std=0.02).high_quality == 0.0


def test_half_the_samples_on_one_mode_half_in_between():
    std = 0.02
    between = 2.0 * np.array([np.cos(np.pi / 8), np.sin(np.pi / 8)])  # equidistant from modes 0 and 1
    points = np.array([MODES[3]] * 1250 + [between] * 1250)
    result = score(points, MODES, std)
    assert result.modes_covered == 1 and result.high_quality == pytest.approx(50.0)
    assert result.per_mode == (0, 0, 0, 1250, 0, 0, 0, 0)
