"""A project's own task loss and metric, registered with Keras, chosen by name (``task.loss=my_loss``)."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.errors import ConfigError

PROJECT_MODULE = '''
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="users_keras_test")
class DoubledMse(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return 2.0 * ops.mean(ops.square(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="users_keras_test")
def halved_mae(y_true, y_pred):
    return 0.5 * ops.mean(ops.abs(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="users_keras_test")
def sliced_loss(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred[:, :3]), axis=-1)


@keras.saving.register_keras_serializable(package="users_keras_test")
class WeightedMse(keras.losses.Loss):
    def __init__(self, alpha, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha


@keras.saving.register_keras_serializable(package="users_keras_test")
class CountAbove(keras.metrics.Metric):
    def __init__(self, name="count_above", **kwargs):
        super().__init__(name=name, **kwargs)
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.count.assign_add(ops.sum(ops.cast(y_pred > 0.5, "float32")))

    def result(self):
        return self.count
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One project for the module: Python imports its module once (a second project's would be the first's)."""
    import os

    from lossexp import project as projects

    root = tmp_path_factory.mktemp("users_keras")
    (root / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["users_losses"]\n')
    (root / "users_losses.py").write_text(PROJECT_MODULE)
    before = os.getcwd()
    os.chdir(root)
    try:
        projects.load()
        yield root
    finally:
        os.chdir(before)


def test_the_projects_registered_loss_and_metric_are_chosen_by_name(project):
    """``task.loss=DoubledMse`` was 'Unknown task.loss': Keras' names only. NumPy: 2·mean((y − ŷ)²), ½·mean|y − ŷ|."""
    import keras

    from lossexp.training.task import check_metric, keras_loss_names, resolve_loss

    y, p = np.array([[0.0, 1.0], [2.0, 0.0]], "float32"), np.array([[0.5, 1.0], [1.0, 1.0]], "float32")
    doubled = resolve_loss("task.loss", "DoubledMse")
    assert isinstance(doubled, keras.losses.Loss)
    assert float(doubled(y, p)) == pytest.approx(np.mean(2 * np.mean((y - p) ** 2, axis=-1)))
    halved = resolve_loss("task.loss", "halved_mae")
    assert np.allclose(np.asarray(halved(y, p)), 0.5 * np.mean(np.abs(y - p), axis=-1))
    assert {"DoubledMse", "halved_mae"} <= set(keras_loss_names())
    assert type(check_metric("task.metrics", "CountAbove")).__name__ == "CountAbove"
    assert check_metric("task.metrics", "accuracy") == "accuracy"
    with pytest.raises(ConfigError, match="or the project's registered CountAbove"):
        check_metric("task.metrics", "count_abov")
    with pytest.raises(ConfigError) as info:  # was TypeError's traceback
        resolve_loss("task.loss", "WeightedMse")
    assert str(info.value) == ("Invalid value for task.loss: expected a class that task.loss makes with its defaults "
                               "(give its __init__ arguments defaults), got \"WeightedMse: WeightedMse.__init__() "
                               "missing 1 required positional argument: 'alpha'\"")


def test_the_projects_loss_failing_on_the_first_examples_names_its_file_and_line(project):
    from lossexp.training.task import Task, check_finite, resolve_loss

    task = Task("regression", resolve_loss("task.loss", "sliced_loss"), ["mean_absolute_error"], "sliced_loss")
    with pytest.raises(ConfigError) as info:
        check_finite(task, np.zeros((8, 3), "float32"), np.zeros((8, 2), "float32"))
    assert str(info.value).startswith(f"Invalid value for task.loss: sliced_loss fails on the first examples at "
                                      f"{project / 'users_losses.py'}:")
