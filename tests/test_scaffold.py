"""``lossexp new component|model|data NAME``: the files it writes train as written, their tests pass as
written and fail on what they are there to catch, and the project's ``pyproject.toml`` is edited in place."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import cli, lossexp_env
from lossexp.errors import ConfigError
from lossexp.scaffold import new_part
from test_project import runs

#: written beside the generated tests: the stateful one run against a reference whose state moves at 0.45, not 0.5
WRONG_STATE = '''import pytest

import test_ema_pull as generated


def test_the_generated_test_fails_on_a_wrong_state(monkeypatch):
    reference = generated.numpy_steps
    monkeypatch.setattr(generated, "numpy_steps", lambda batches, momentum: reference(batches, momentum * 0.9))
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        generated.test_term_gradient_and_state_match_numpy()
'''


#: a project's subclassed network, of a layer named as the scaffolded components' default (hidden_1)
SUBCLASSED_MODEL = '''import keras

import lossexp


class SubNet(keras.Model):
    def __init__(self, outputs):
        super().__init__()
        self.hidden_1 = keras.layers.Dense(8, activation="relu", name="hidden_1")
        self.head = keras.layers.Dense(outputs)

    def call(self, x):
        return self.head(self.hidden_1(x))


@lossexp.register_model("subnet")
def subnet(data):
    return SubNet(data.num_outputs)
'''


@pytest.mark.slow
@pytest.mark.integration  # the scaffold's own test in a pytest process of its own, 17 s: the CI budget
def test_new_component_scaffolds_a_class_a_yaml_and_a_passing_numpy_test(tmp_path):
    """Both templates: a stateless term, and (``--stateful``; before, there was only the stateless one) a term
    with state moved in the step, whose NumPy test checks the state too — it passes as written and fails on a
    wrong state; both train, the state recorded in MLflow as ``weight/state/<c>/<v>``."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mine"\n\n[tool.lossexp]\nmodules = ["models"]\n')
    (tmp_path / "models.py").write_text(SUBCLASSED_MODEL)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "subnet.yaml").write_text("name: subnet\n")
    result = cli(tmp_path, "new", "component", "smooth_pred")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "smooth_pred.py").exists() and (tmp_path / "conf" / "loss" / "smooth_pred.yaml").exists()
    assert 'modules = ["models", "smooth_pred"]' in (tmp_path / "pyproject.toml").read_text()
    again = cli(tmp_path, "new", "component", "smooth_pred")
    assert again.returncode == 2 and "overwrites nothing" in again.stderr
    taken = cli(tmp_path, "new", "component", "hist_avg")
    assert taken.returncode == 2 and "'hist_avg' is taken" in taken.stderr
    stateful = cli(tmp_path, "new", "component", "ema_pull", "--stateful")
    assert stateful.returncode == 0, stateful.stderr
    assert 'add_weight(name="average"' in (tmp_path / "ema_pull.py").read_text()
    (tmp_path / "tests" / "test_wrong_state.py").write_text(WRONG_STATE)
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                            env=lossexp_env(), capture_output=True, text=True, timeout=600)
    assert tested.returncode == 0 and "3 passed" in tested.stdout, tested.stdout[-3000:]
    trained = cli(tmp_path, "train", "model=mlp", "data=regression", "data.n_samples=100", "loss=smooth_pred+ema_pull",
                  "trainer.epochs=1", "trainer.log_every_n_steps=1", "tracking.plots=false")
    assert trained.returncode == 0, trained.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED" and "term/smooth_pred" in run.data.metrics
    state = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_metric_history(
        run.info.run_id, "weight/state/ema_pull/average.norm")
    assert (state[0].step, state[0].value) == (0, 0.0) and len(state) > 2 and state[-1].value > 0  # it moved
    # on a subclassed network: its state sized by self.output_shape (a graph's layer.output was all it read)
    trained = cli(tmp_path, "train", "model=subnet", "data=regression", "data.n_samples=100", "loss=ema_pull",
                  "trainer.epochs=1", "tracking.plots=false", "tracking.log_model=false")
    assert trained.returncode == 0, trained.stderr[-3000:]


@pytest.mark.parametrize("args", [("component", "ema_pull", "--statefull"), ("model", "my_net", "--stateful"),
                                  ("layer", "my_layer")])
def test_new_with_an_unknown_flag_or_kind_is_one_line(run_cli, args):
    result = run_cli("new", *args)
    assert result.returncode == 2
    assert result.stderr.strip() == ("lossexp: error: Invalid value for lossexp new: expected 'lossexp new "
                                     "component|model|data NAME  (component: [--stateful])', got " f"{' '.join(args)!r}")


#: the scaffolded model and data source, each broken as their tests are there to catch: a layer class not
#: registered (the saved network loads nowhere), rows drawn afresh at each call (they move into validation)
UNREGISTERED_LAYER = ("x = keras.layers.Flatten()(inputs)",
                      "x = type('Scale', (keras.layers.Layer,), {'call': lambda self, v: 2.0 * v})()(keras.layers.Flatten()(inputs))")
UNSEEDED_ROWS = ("rng = np.random.default_rng(seed)", "rng = np.random.default_rng()")


@pytest.mark.slow
@pytest.mark.integration  # the scaffold's own tests in pytest processes of their own, 23 s: the CI budget
def test_new_model_and_data_train_as_written_and_their_tests_catch_what_they_are_for(tmp_path):
    """Before, ``lossexp new`` wrote components only. A scaffolded model and data source train together with
    lossexp's components and one of the project's (the model's layers named as they read them); their tests pass
    as written, and fail on a layer class not registered and on rows that differ between calls."""
    for kind, name in (("model", "my_net"), ("data", "my_rows"), ("component", "my_term")):
        result = cli(tmp_path, "new", kind, name)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "conf" / "model" / "my_net.yaml").exists() and (tmp_path / "conf" / "data" / "my_rows.yaml").exists()
    assert "lossexp: then: lossexp train data=other_rows model=mlp" in cli(tmp_path, "new", "data", "other_rows").stdout
    assert 'modules = ["my_net", "my_rows", "my_term", "other_rows"]' in (tmp_path / "pyproject.toml").read_text()
    taken = cli(tmp_path, "new", "model", "mlp")
    assert taken.returncode == 2 and "Invalid value for NAME: 'mlp' is taken; the models are " in taken.stderr
    trained = cli(tmp_path, "train", "model=my_net", "data=my_rows", "loss=hist_avg+activity+my_term",
                  "trainer.epochs=2", "tracking.plots=false", "tracking.log_model=false")
    assert trained.returncode == 0, trained.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.metrics["val_accuracy"] > 0.9
    assert {"term/activity", "term/hist_avg", "term/my_term"} <= set(run.data.metrics)

    def generated_tests() -> str:
        tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                                env=lossexp_env(), capture_output=True, text=True, timeout=600)
        return tested.stdout

    assert "9 passed" in generated_tests()
    for module, (written, broken) in (("my_net.py", UNREGISTERED_LAYER), ("my_rows.py", UNSEEDED_ROWS)):
        (tmp_path / module).write_text((tmp_path / module).read_text().replace(written, broken))
    outcome = generated_tests()
    assert "2 failed, 7 passed" in outcome, outcome[-3000:]
    assert "test_the_saved_network_reloads_to_the_same_predictions" in outcome
    assert "test_the_same_options_give_the_same_rows_in_the_same_order" in outcome



def scaffolded_pyproject(root: Path, pyproject: str, name: str = "my_term") -> str:
    """``pyproject.toml`` once ``lossexp new component NAME`` has added ``name`` to it (checked to parse)."""
    (root / "pyproject.toml").write_text(pyproject)
    new_part("component", name, root)
    text = (root / "pyproject.toml").read_text()
    tomllib.loads(text)
    return text


def test_new_component_extends_the_table_whose_header_carries_a_comment(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]  # my research project\nmodules = ["my_net", "my_data"]\n')
    for module in ("my_net", "my_data"):
        (tmp_path / f"{module}.py").write_text("")
    result = cli(tmp_path, "new", "component", "my_term")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pyproject.toml").read_text() == (
        '[tool.lossexp]  # my research project\nmodules = ["my_net", "my_data", "my_term"]\n')
    listed = cli(tmp_path, "components", "my_term")  # the next command reads the project, and its new component
    assert listed.returncode == 0 and "  my_term " in listed.stdout, listed.stderr


def test_new_component_adds_modules_to_its_own_table_not_the_next_ones(tmp_path):
    text = scaffolded_pyproject(tmp_path, '[tool.lossexp]\nconf = "conf"\n\n[tool.other]\nmodules = ["unrelated"]\n',
                                "term_a")
    assert text == '[tool.lossexp]\nmodules = ["term_a"]\nconf = "conf"\n\n[tool.other]\nmodules = ["unrelated"]\n'


def test_new_component_extends_a_list_over_several_lines_in_its_layout(tmp_path):
    text = scaffolded_pyproject(tmp_path, '[project]\nname = "mine"\n\n[tool.lossexp]\nmodules = [\n    "my_net",  # the network\n'
                                          '    "my_data"\n]  # my parts\nconf = "conf"\n')
    assert text == ('[project]\nname = "mine"\n\n[tool.lossexp]\nmodules = [\n    "my_net",  # the network\n'
                    '    "my_data",\n    "my_term"\n]  # my parts\nconf = "conf"\n')


def test_new_component_appends_the_table_a_pyproject_lacks(tmp_path):
    text = scaffolded_pyproject(tmp_path, '[project]\nname = "mine"\n\n[tool.other]\nmodules = ["unrelated"]\n')
    assert text == '[project]\nname = "mine"\n\n[tool.other]\nmodules = ["unrelated"]\n\n[tool.lossexp]\nmodules = ["my_term"]\n'


def test_new_component_writes_nothing_when_it_cannot_edit_the_pyproject(tmp_path):
    pyproject = '[tool]\nlossexp.modules = ["my_net"]  # a dotted key, not a [tool.lossexp] header\n'
    (tmp_path / "pyproject.toml").write_text(pyproject)
    with pytest.raises(ConfigError, match=r"^Invalid file pyproject\.toml: could not add 'my_term' .*by hand$"):
        new_part("component", "my_term", tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pyproject.toml"]
    assert (tmp_path / "pyproject.toml").read_text() == pyproject


def test_new_component_refuses_the_name_of_a_standard_library_module(tmp_path):
    """Before, `lossexp new component queue` wrote queue.py, and every run of the project then failed as
    'Invalid project module ... ImportError: cannot import name 'cast' ... circular import' (Keras imports
    queue); now the name is refused before anything is written."""
    with pytest.raises(ConfigError, match=r"^Invalid value for NAME: 'queue' is a module of Python's standard "
                                          r"library, .* name it e\.g\. my_queue$"):
        new_part("component", "queue", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind, name", [("model", "keras"), ("data", "mlflow"), ("component", "numpy")])
def test_new_refuses_the_name_of_an_installed_module(tmp_path, kind, name):
    """``lossexp new model keras`` wrote keras.py beside the project's modules, where every run then imported it in
    place of Keras; only the standard library's names were refused."""
    with pytest.raises(ConfigError, match=rf"^Invalid value for NAME: '{name}' is an installed module \(.*\), which "
                                          rf"{name}\.py beside the project's modules would replace .* my_{name}$"):
        new_part(kind, name, tmp_path)
    assert list(tmp_path.iterdir()) == []
