"""Which value the non-finite guard blames."""
from __future__ import annotations

import math

import pytest

from lossexp.tracking.guard import first_non_finite


@pytest.mark.parametrize("logs, expected", [
    ({"loss": 1.0, "loss/task": 0.5, "loss/a": 0.5}, None),
    ({"loss": math.nan, "loss/task": 0.5, "loss/a": math.inf, "loss/b": math.nan}, "loss/a"),
    ({"loss": math.nan, "loss/task": math.nan, "loss/a": math.inf}, "loss/task"),
    ({"loss": math.nan, "loss/task": 0.5, "loss/a": 0.5, "loss/b": -math.inf}, "loss/b"),
    ({"loss": math.inf, "loss/task": 1.0}, "loss"),
    ({"loss/generator": math.nan, "loss/discriminator": 0.1}, "loss/generator"),  # GAN: no total
    ({"loss": 1.0, "term/a": math.nan, "accuracy": 0.5}, None),  # an unweighted term alone does not stop training
    # at an epoch's end: a part of the validation loss (a term NaN in validation only: the objective was NaN, the run FINISHED)
    ({"loss": 1.0, "loss/task": 1.0, "val_loss": math.nan, "val_loss/task": 1.0, "val_loss/a": math.nan}, "val_loss/a"),
    ({"loss": math.nan, "loss/a": math.nan, "val_loss": math.nan, "val_loss/task": math.nan}, "loss/a"),
    ({"loss": 1.0, "val_loss": math.inf, "val_loss/task": 1.0}, "val_loss"),
], ids=["finite", "first-component", "task-first", "later-component", "total-only", "gan", "term-only",
        "validation-part", "training-first", "validation-total"])
def test_first_non_finite_follows_loss_task_then_component_order(logs, expected):
    assert first_non_finite(logs, ["a", "b"]) == expected


def test_the_exceptions_survive_pickling_back_from_a_sweep_worker():
    import pickle
    import signal

    from lossexp.errors import NonFiniteLoss, Terminated

    loss = pickle.loads(pickle.dumps(NonFiniteLoss("loss/task", float("inf"), 7)))
    assert (loss.key, loss.value, loss.step, str(loss)) == ("loss/task", float("inf"), 7,
                                                           "loss/task is inf at step 7; training stopped")
    first = pickle.loads(pickle.dumps(NonFiniteLoss("loss/task", float("nan"), 10, first=7)))
    assert (first.step, first.first, str(first)) == (10, 7, "loss/task is nan at step 10 (first not finite at step 7); training "
                                                             "stopped")
    terminated = pickle.loads(pickle.dumps(Terminated(signal.SIGTERM)))
    assert terminated.signum == signal.SIGTERM and str(terminated) == "terminated by SIGTERM"


def test_the_part_non_finite_the_longest_is_blamed_when_all_are_by_the_check():
    """A component's term divides by zero from step 3 of a 10-step interval; its gradient makes every
    weight NaN at the next step, so at the check every part is NaN and the guard blamed ``loss/task``,
    the first in order: a researcher was sent to debug the task loss for a division in their own term.
    The breakdown counts each part's non-finite steps; the part non-finite longest is blamed."""
    import keras
    import numpy as np
    from keras import ops

    import lossexp
    from lossexp.errors import NonFiniteLoss
    from lossexp.tracking.callback import MetricSink
    from lossexp.tracking.guard import NonFiniteGuard

    @lossexp.register_component("divides_by_zero_from_step_3")
    class DividesByZero(lossexp.LossComponent):
        def term(self, context):
            square = ops.mean(ops.square(ops.cast(context.y_pred, "float32")))
            return square if context.step is None else square / ops.maximum(0.0, 3.0 - context.step)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = lossexp.compose(keras.Model(inputs, keras.layers.Dense(1)(inputs)),
                            [DividesByZero(name="divides_by_zero_from_step_3", weight=0.1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.random.default_rng(0).random((40, 4)).astype("float32")
    with pytest.raises(NonFiniteLoss) as stopped:
        model.fit(x, x[:, :1], batch_size=4, epochs=1, verbose=0, callbacks=[NonFiniteGuard(MetricSink(None, None), 10)])
    assert (stopped.value.key, stopped.value.step) == ("loss/divides_by_zero_from_step_3", 10)
    assert model.breakdown.nonfinite_steps() == {"loss/task": 7, "term/divides_by_zero_from_step_3": 8,
                                                 "loss/divides_by_zero_from_step_3": 8}


def stopped_by_a_nan_term(name: str, is_nan, steps_per_execution: int = 1, **fit):
    """Fit a one-``Dense`` network whose component ``name``'s term is NaN at the steps ``is_nan(step)`` marks, the
    guard looking every 10 steps, until the guard stops it: (its NonFiniteLoss, the model)."""
    import keras
    import numpy as np
    from keras import ops

    import lossexp
    from lossexp.errors import NonFiniteLoss
    from lossexp.tracking.callback import MetricSink
    from lossexp.tracking.guard import NonFiniteGuard

    class NanAtSomeSteps(lossexp.LossComponent):
        def term(self, context):
            square = ops.mean(ops.square(ops.cast(context.y_pred, "float32")))
            if context.step is None:
                return square
            return ops.where(is_nan(context.step), ops.log(square * 0.0 - 1.0), square)

    lossexp.register_component(name)(NanAtSomeSteps)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = lossexp.compose(keras.Model(inputs, keras.layers.Dense(1)(inputs)), [NanAtSomeSteps(name=name, weight=0.1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", steps_per_execution=steps_per_execution)
    x = np.random.default_rng(0).random((40, 4)).astype("float32")
    with pytest.raises(NonFiniteLoss) as stopped:
        model.fit(x, x[:, :1], batch_size=4, verbose=0, callbacks=[NonFiniteGuard(MetricSink(None, None), 10)], **fit)
    return stopped.value, model


def test_a_term_non_finite_at_one_step_is_reported_with_the_step_it_was_first_at():
    """A term NaN at step 7 alone (its gradient finite: the weights stay finite) was reported "at step 10",
    the logging interval's check, with no sign of step 7; the breakdown now marks the first step in the graph
    (steps_per_execution 10: the check cannot run between)."""
    import numpy as np
    from keras import ops

    stopped, model = stopped_by_a_nan_term("nan_at_7", lambda step: ops.equal(step, 7.0), steps_per_execution=10,
                                           epochs=1)
    assert (stopped.key, stopped.step, stopped.first) == ("loss/nan_at_7", 10, 7)
    assert str(stopped) == "loss/nan_at_7 is nan at step 10 (first not finite at step 7); training stopped"
    assert model.breakdown.nonfinite_steps() == {"term/nan_at_7": 1, "loss/nan_at_7": 1}
    assert np.isfinite(model.network.get_weights()[0]).all()


def test_the_breakdowns_counts_are_read_only_to_blame_one_of_several_parts():
    """Reading the counts is a variable read after every compiled call (0.13 ms of CPU); finite logs and a
    single non-finite part need none, and the guard read them at every check."""
    from types import SimpleNamespace

    from lossexp.errors import NonFiniteLoss
    from lossexp.tracking.callback import MetricSink
    from lossexp.tracking.guard import NonFiniteGuard

    reads = []

    def nonfinite_steps():
        reads.append(1)
        return {"loss/b": 3}

    guard = NonFiniteGuard(MetricSink(None, None), 10)
    guard.set_model(SimpleNamespace(components=[SimpleNamespace(name="a"), SimpleNamespace(name="b")],
                                    breakdown=SimpleNamespace(nonfinite_steps=nonfinite_steps)))
    guard.check({"loss": 1.0, "loss/task": 0.5, "loss/a": 0.5, "accuracy": 0.25})
    with pytest.raises(NonFiniteLoss) as one:
        guard.check({"loss": math.nan, "loss/task": 0.5, "loss/a": math.nan})
    assert (one.value.key, reads) == ("loss/a", [])
    with pytest.raises(NonFiniteLoss) as several:
        guard.check({"loss": math.nan, "loss/task": 0.5, "loss/a": math.nan, "loss/b": math.nan})
    assert (several.value.key, reads) == ("loss/b", [1])


def test_a_term_non_finite_in_an_epoch_shorter_than_the_logging_interval_keeps_its_first_step():
    """Epochs of 8 steps, the guard's interval 10: it first looks at the epoch's end, after validation has reset
    the breakdown — "nan at step 8" with no "(first at step 6)" and no ``nonfinite.first_step`` tag."""
    from keras import ops

    stopped, _ = stopped_by_a_nan_term("nan_from_6", lambda step: ops.greater_equal(step, 6.0), epochs=2,
                                       validation_split=0.2)
    assert (stopped.key, stopped.step, stopped.first) == ("loss/nan_from_6", 8, 6)
    assert str(stopped) == "loss/nan_from_6 is nan at step 8 (first not finite at step 6); training stopped"


def test_parts_that_went_non_finite_at_the_same_steps_are_named_together():
    """A component's term finite but its gradient NaN (‖W − W₀‖ at W = W₀: the square root's gradient at 0)
    made the weights NaN, then every part from the next step: the line blamed loss/task, the first in order."""
    from types import SimpleNamespace

    from lossexp.errors import NonFiniteLoss
    from lossexp.tracking.callback import MetricSink
    from lossexp.tracking.guard import NonFiniteGuard

    counts = {"loss/task": 9, "loss/anchor": 9}
    guard = NonFiniteGuard(MetricSink(None, None), 10)
    guard.set_model(SimpleNamespace(components=[SimpleNamespace(name="anchor")], breakdown=SimpleNamespace(
        nonfinite_steps=lambda: counts, first_nonfinite_step=lambda key: 2)))
    with pytest.raises(NonFiniteLoss) as stopped:
        guard.check({"loss": math.nan, "loss/task": math.nan, "loss/anchor": math.nan})
    assert stopped.value.together == ("loss/anchor",)
    assert str(stopped.value) == (
        "loss/task is nan at step 0 (first not finite at step 2) — loss/anchor too, from the same step: the weights went "
        "non-finite, from a NaN or infinite gradient the step before (a square root or norm at 0, a log of 0 — in "
        "the task loss or a component's term), or a step too large (optimizer.learning_rate); the values cannot "
        "tell whose; training stopped")
    counts["loss/anchor"] = 3  # went later: the task loss's went first, and alone
    with pytest.raises(NonFiniteLoss) as alone:
        guard.check({"loss": math.nan, "loss/task": math.nan, "loss/anchor": math.nan})
    assert alone.value.together == () and "too" not in str(alone.value)
