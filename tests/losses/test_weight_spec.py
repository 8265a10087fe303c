"""Parsing ``weight``: numbers, schedules and trainable forms; every bad form is one line naming
the key, what is allowed and the bad value. Pure Python: no TensorFlow."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lossexp.errors import ConfigError
from lossexp.losses.weight_spec import PARAMETRIZATIONS, parse_weight

KEY = "loss.kl.weight"


def test_a_number_is_a_constant_weight():
    spec = parse_weight(KEY, 0.25)
    assert (spec.kind, spec.initial, spec.trained_by_gradient) == ("constant", 0.25, False)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_trainable_forms(parametrization):
    spec = parse_weight(KEY, {"value": 0.5, "trainable": True, "parametrization": parametrization})
    assert spec.kind == "trainable" and spec.initial == 0.5
    assert spec.trained_by_gradient == (parametrization != "dual")
    assert spec.can_diverge == (parametrization in ("raw", "uncertainty"))


def test_trainable_defaults_to_softplus_and_dual_takes_lr_and_epsilon():
    assert parse_weight(KEY, {"trainable": True}).parametrization == "softplus"
    spec = parse_weight(KEY, {"trainable": True, "parametrization": "dual", "lr": 0.1, "epsilon": 2.0, "value": 0})
    assert (spec.lr, spec.epsilon, spec.value) == (0.1, 2.0, 0.0)


def test_schedule_starts_at_its_value_for_step_zero():
    spec = parse_weight(KEY, {"schedule": "linear", "start": 0.2, "end": 1.0, "steps": 10})
    assert spec.kind == "scheduled" and spec.initial == pytest.approx(0.2)
    assert spec.at_step(5) == pytest.approx(0.6) and spec.at_step(50) == pytest.approx(1.0)


BAD = [
    (-0.1, "Invalid value for loss.kl.weight: expected a finite number >= 0.0, got -0.1"),
    (math.nan, "Invalid value for loss.kl.weight: expected a finite number >= 0.0, got nan"),
    ("0.1", "Invalid value for loss.kl.weight: expected a finite number >= 0.0, got '0.1'"),
    (True, "Invalid value for loss.kl.weight: expected a finite number >= 0.0, got True"),
    ({"value": 1.0}, "Invalid value for loss.kl.weight: expected a number >= 0, a mapping with `schedule:` "
                     "or a mapping with `trainable: true`, got {'value': 1.0}"),
    ({"schedule": "cosine"}, "Invalid value for loss.kl.weight.schedule: expected one of constant, linear, "
                             "sigmoid, cyclical, got 'cosine'"),
    ({"schedule": "linear", "steps": 0}, "Invalid value for loss.kl.weight.steps: expected a finite number > 0.0, "
                                         "got 0"),
    ({"schedule": "linear", "start": -1}, "Invalid value for loss.kl.weight.start: expected a finite number >= 0.0, "
                                          "got -1"),
    ({"schedule": "cyclical", "ratio": 1.5}, "Invalid value for loss.kl.weight.ratio: expected 0.0 < value <= 1.0, "
                                             "got 1.5"),
    ({"schedule": "cyclical", "steps": 3, "cycles": 4}, "Invalid value for loss.kl.weight.cycles: expected at most "
                                                        "steps (3) cycles, got 4"),
    ({"schedule": "sigmoid", "sharpness": 0}, "Invalid value for loss.kl.weight.sharpness: expected a finite "
                                              "number > 0.0, got 0"),
    ({"schedule": "linear", "cycles": 2}, "Unknown key loss.kl.weight.cycles: valid keys are schedule, start, end, "
                                          "steps, delay"),
    ({"trainable": True, "parametrization": "sigmoid"}, "Invalid value for loss.kl.weight.parametrization: "
                                                        "expected one of raw, softplus, exp, uncertainty, dual, "
                                                        "got 'sigmoid'"),
    ({"trainable": True, "parametrization": "softplus", "value": 0.0},
     "Invalid value for loss.kl.weight.value: expected a finite number > 0.0, got 0.0"),
    ({"trainable": True, "parametrization": "exp", "value": -0.5},
     "Invalid value for loss.kl.weight.value: expected a finite number > 0.0, got -0.5"),
    ({"trainable": True, "parametrization": "raw", "value": math.inf},
     "Invalid value for loss.kl.weight.value: expected a finite number >= 0.0, got inf"),
    ({"trainable": True, "parametrization": "dual", "lr": 0},
     "Invalid value for loss.kl.weight.lr: expected a finite number > 0.0, got 0"),
    ({"trainable": True, "lr": 0.1}, "Unknown key loss.kl.weight.lr: valid keys are value, trainable, "
                                     "parametrization"),
]


@pytest.mark.parametrize("spec, message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_weights_are_one_line_errors(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_weight(KEY, spec)
    assert str(info.value) == message


def test_cyclical_starts_at_the_start_of_a_cycle():
    spec = parse_weight(KEY, {"schedule": "cyclical", "start": 0.0, "end": 1.0, "steps": 8, "cycles": 2, "ratio": 0.5})
    assert [spec.at_step(t) for t in range(0, 6)] == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0, 0.0])
    assert spec.initial == 0.0


def fu_cyclical(T: int, M: float, R: float, start: float, end: float, steps: np.ndarray) -> np.ndarray:
    """Fu et al. 2019, eq. 5, written out in NumPy: τ = mod(t − 1, ⌈T/M⌉)/(T/M); β = f(τ) = τ/R while
    τ ≤ R, else 1, rescaled to [start, end]; a finished schedule (t > T) holds its maximum."""
    tau = np.mod(steps - 1, np.ceil(T / M)) / (T / M)
    beta = np.where(tau <= R, tau / R, 1.0)
    return np.where(steps > T, end, start + (end - start) * beta)


def test_cyclical_restarts_every_ceil_steps_over_cycles_as_fu_et_al():
    spec = parse_weight(KEY, {"schedule": "cyclical", "start": 0, "end": 1, "steps": 10, "cycles": 3, "ratio": 0.5})
    assert spec.cycle_length == 4
    got = [spec.at_step(t) for t in range(1, 11)]
    assert got == pytest.approx([0, 0.6, 1, 1, 0, 0.6, 1, 1, 0, 0.6])  # the fractional length gave 0.4 at t = 5
    assert got == pytest.approx(fu_cyclical(10, 3, 0.5, 0.0, 1.0, np.arange(1, 11)))


@pytest.mark.parametrize("T, M, R, start, end", [(10, 3, 0.5, 0, 1), (1000, 7, 0.3, 0.1, 2.0), (97, 4, 1.0, 0, 1),
                                                 (12, 12, 0.5, 0, 1), (50, 1, 0.25, 0.5, 0.5)])
def test_cyclical_matches_fu_et_al_and_holds_its_maximum_after_steps(T, M, R, start, end):
    spec = parse_weight(KEY, {"schedule": "cyclical", "start": start, "end": end, "steps": T, "cycles": M, "ratio": R})
    steps = np.arange(1, 2 * T + 3)
    np.testing.assert_allclose([spec.at_step(int(t)) for t in steps], fu_cyclical(T, M, R, start, end, steps),
                               rtol=1e-12, atol=1e-12)
    assert spec.at_step(T + 1) == end and spec.at_step(10 * T) == end
