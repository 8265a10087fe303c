"""The logged steps and values do not depend on how many steps run per compiled call."""
from __future__ import annotations

import numpy as np


def recorded_history(steps_per_execution: int) -> dict:
    import keras

    from lossexp.tracking.callback import MetricSink, RunRecorder

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh", name="hidden"),
                              keras.layers.Dense(1, name="output")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).astype("float32")  # 100 rows / batch 10: 10 steps an epoch
    y = x.sum(axis=1, keepdims=True)
    sink = MetricSink(None, None)
    model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0, callbacks=[RunRecorder(sink, 3, drift=True)])
    return {key: points for key, points in sink.history.items() if key != "startup_seconds"}


def test_steps_and_values_are_the_same_with_one_or_three_steps_per_call():
    one, batched = recorded_history(1), recorded_history(3)
    assert [step for step, _ in one["loss"]] == [3, 6, 9, 10, 13, 16, 19, 20]  # every 3 steps of an epoch, its end
    assert one.keys() == batched.keys()
    for key in one:
        assert [step for step, _ in one[key]] == [step for step, _ in batched[key]], key
        np.testing.assert_allclose([v for _, v in one[key]], [v for _, v in batched[key]], rtol=1e-5, err_msg=key)
