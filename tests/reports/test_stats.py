"""Mean ± standard error, Welch's and the paired t-test against values computed by hand (closed-form t CDFs
at 1 and 2 degrees of freedom) and against SciPy's ``ttest_ind(equal_var=False)`` and ``ttest_rel``."""
import math

import pytest

from lossexp.reports.stats import paired, summarize, welch


def test_summary_of_four_values_by_hand():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.n, s.mean) == (4, 2.5)
    assert s.std == pytest.approx(math.sqrt(5 / 3)) and s.se == pytest.approx(math.sqrt(5 / 3) / 2)


def test_a_diverged_or_missing_seed_is_left_out_and_counted():
    s = summarize([1.0, float("nan"), 3.0, None, float("inf")])
    assert (s.n, s.mean, s.std) == (2, 2.0, pytest.approx(math.sqrt(2)))
    one = summarize([5.0])
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.se)
    assert summarize([]).n == 0


def test_equal_values_have_no_spread():
    """(By ``fsum / n`` three seeds' 0.2 averaged 0.20000000000000004: "0.2 ± 2e-17".)"""
    s = summarize([0.01 * 20] * 3)
    assert (s.mean, s.std, s.se) == (0.2, 0.0, 0.0)


def test_welch_with_two_degrees_of_freedom_by_hand():
    """a = 1, 2, 3 (variance 1), b = 5, 5, 5 (none): t = −3/√(1/3) = −3√3, df = 2, and the t CDF at 2
    degrees of freedom is 1/2 + t / (2√(2 + t²)), so p = 1 − 3√3/√29."""
    test = welch(summarize([1, 2, 3]), summarize([5, 5, 5]))
    assert test.diff == -3 and test.t == pytest.approx(-3 * math.sqrt(3))
    assert test.df == pytest.approx(2) and test.p == pytest.approx(1 - 3 * math.sqrt(3) / math.sqrt(29))


def test_welch_with_one_degree_of_freedom_by_hand():
    """a = 0, 2 (variance 2: se² 1), b = 7 ×4: t = −6, df = 1 (Cauchy): p = 1 − 2·atan(6)/π = 0.1051."""
    test = welch(summarize([0, 2]), summarize([7, 7, 7, 7]))
    assert (test.t, test.df) == (pytest.approx(-6), pytest.approx(1))
    assert test.p == pytest.approx(1 - 2 * math.atan(6) / math.pi) and round(test.p, 4) == 0.1051


def test_welch_matches_scipys_unequal_variance_t_test():
    from scipy.stats import ttest_ind

    a, b = [0.31, 0.35, 0.29, 0.40, 0.33], [0.42, 0.39, 0.51]
    test, reference = welch(summarize(a), summarize(b)), ttest_ind(a, b, equal_var=False)
    assert test.t == pytest.approx(reference.statistic) and test.p == pytest.approx(reference.pvalue)
    assert test.df == pytest.approx(reference.df)


def test_welch_is_undefined_for_a_single_seed_or_no_spread():
    assert welch(summarize([1.0]), summarize([1.0, 2.0])) is None
    assert welch(summarize([1.0, 1.0]), summarize([2.0, 2.0])) is None


def test_paired_with_two_degrees_of_freedom_by_hand():
    """Differences 0.5, 0.4, 0.6: mean 0.5, sd 0.1, t = 0.5/(0.1/√3) = 5√3, df 2: p = 1 − 5√3/√77."""
    test = paired([0.5, 0.4, 0.6])
    assert test.diff == pytest.approx(0.5) and test.t == pytest.approx(5 * math.sqrt(3)) and test.df == 2
    assert test.p == pytest.approx(1 - 5 * math.sqrt(3) / math.sqrt(77))


def test_paired_matches_scipys_related_t_test_and_is_undefined_without_spread():
    from scipy.stats import ttest_rel

    a, b = [1.5, 2.4, 3.6, 2.2], [1.0, 2.0, 3.0, 2.1]
    test, reference = paired([x - y for x, y in zip(a, b)]), ttest_rel(a, b)
    assert test.t == pytest.approx(reference.statistic) and test.p == pytest.approx(reference.pvalue)
    assert paired([3.0, 3.0, 3.0]) is None and paired([1.0]) is None
