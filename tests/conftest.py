"""Shared fixtures: quiet TensorFlow, a CLI runner in a temporary working directory, a
temporary MLflow SQLite store read back with ``MlflowClient``, and for the component tests a
tiny named Dense network, an independent NumPy forward pass of it, a composed-model builder
and a small regression batch. Keras is imported inside fixtures only, so collecting the tests
that do not train never imports TensorFlow."""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import threading
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # as many test processes as cores: each TensorFlow (and each command a test runs, which inherits this) on one
    # thread, not a pool per core whose idle threads spin for work the other process's cores are doing (the
    # tests of the loss components: 48.4 and 52.7 s of CPU against 52.0 and 56.2, interleaved at a load of 8; read
    # by TensorFlow when its runtime starts, before any test)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent


def dataset(name: str, **options):
    """The checked Dataset of the data source ``name`` with ``options``, as a run loads it."""
    from lossexp.config import Selection
    from lossexp.data import load

    return load(Selection(name, options))


def composed_config(*overrides: str):
    """The validated config ``lossexp train OVERRIDES`` would run (real Hydra composition, the CLI's
    own ``loss=a+b`` and weight-mapping rewriting)."""
    from hydra import compose, initialize_config_dir

    from lossexp import CONF_DIR
    from lossexp.config import validate
    from lossexp.overrides import rewrite_loss
    from lossexp.registry import available

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validate(compose("config", overrides=rewrite_loss(overrides, available("loss"))))


def built(config):
    """(compiled model, prepared data) of a validated config, as a run builds them."""
    from lossexp.data import load
    from lossexp.training.trainer import for_config

    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    return trainer.build(data), data


def logged_model_file(store_uri: str, run_id: str) -> Path:
    """The ``.keras`` file of a run's logged MLflow model (``runs:/ID/model``), downloaded."""
    from lossexp.tracking.model_source import resolve

    return resolve(f"runs:/{run_id}/model", [f"tracking.uri={store_uri}"]).keras_path


def network(name: str, data, **options):
    """The network the model builder ``name`` builds for ``data`` with ``options``."""
    from lossexp import registry
    from lossexp.config import Selection

    return registry.build("model", Selection(name, options), data=data)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Make ``--dist loadgroup`` keep an ``xdist_group`` on one worker again.

    pytest-xdist 3.8 tags a grouped test by assigning ``item._nodeid``, which pytest 9.2 no longer
    reads (a node's id is the ``NodeId`` in ``item._id``): every group was silently spread over the
    workers, and a module-scoped run (the done-when sweep) was paid once per worker. This sets the
    same ``<nodeid>@<group>`` id where xdist's own tagging did not take; drop it once xdist does."""
    if not config.getoption("loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                         for mark in item.iter_markers("xdist_group")})
        if groups and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")


def logged_steps(key: str, every: int, steps: int) -> List[int]:
    """The steps at which a run of ``steps`` training steps (fewer than 100) that logs every ``every``
    steps records ``key``: the logging intervals and the end; the last step for validation values,
    the epoch and the objective; the first interval for start-up time and the gradient diagnostics
    (then every 100 steps); the first interval and the end for drift (then every 100 steps); the learning rate
    at step 0 too, as the weights that change."""
    if key.startswith("val_") or key in ("epoch", "objective"):
        return [steps]
    if key.split("/")[0] == "learning_rate":
        return [0, *logged_steps("loss", every, steps)]
    if key == "startup_seconds" or key.startswith("weight_grad/"):
        return [every]
    if key.startswith("weight_drift/"):
        return [every, steps]
    return sorted(set(range(every, steps + 1, every)) | {steps})


#: metrics measured by the gradient diagnostics' own compiled function, whose oneDNN kernels round
#: differently from one process to the next (1 float32 ULP seen; identical with TF_ENABLE_ONEDNN_OPTS=0)
DIAGNOSTICS_PREFIX = "weight_grad/"


def assert_same_histories(got: Dict[str, list], expected: Dict[str, list]) -> None:
    """Every metric history bit for bit, the gradient diagnostics' to float32 rounding (same steps)."""
    assert set(got) == set(expected)
    for key, points in expected.items():
        if key.startswith(DIAGNOSTICS_PREFIX):
            assert [step for step, _ in got[key]] == [step for step, _ in points], key
            assert [value for _, value in got[key]] == pytest.approx([value for _, value in points],
                                                                      rel=1e-6, abs=1e-9), key
        else:
            assert got[key] == points, key


def require(available: bool, reason: str) -> None:
    """Fail the calling test when a prerequisite it needs is missing, naming it: a skipped test would
    prove nothing. Only the integration tier needs any, and ``make test-integration`` installs them
    (``tests/integration/prerequisites.sh``; the Ray test also needs root for its namespaces)."""
    if not available:
        pytest.fail(f"missing prerequisite: {reason}", pytrace=False)


@contextlib.contextmanager
def local_http_server(handler: type) -> Iterator[http.server.ThreadingHTTPServer]:
    """A threaded HTTP server on 127.0.0.1 (an ephemeral port) answering with ``handler``; the
    requests it saw are in ``server.requests`` (for handlers that record them)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def lossexp_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


@pytest.fixture(autouse=True)
def fluent_tracking_uri_restored() -> Iterator[None]:
    """A test that points MLflow's fluent API at its store (``mlflow.set_tracking_uri``, which also
    exports ``$MLFLOW_TRACKING_URI``) or experiment (``mlflow.set_experiment``: ``$MLFLOW_EXPERIMENT_ID``,
    which lossexp.fit follows) does not send the next in-process run of its worker there.
    lossexp itself restores what it sets (tests/test_api.py checks it)."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    experiment = os.environ.get("MLFLOW_EXPERIMENT_ID")
    yield
    if os.environ.get("MLFLOW_TRACKING_URI") != before:
        import mlflow

        mlflow.set_tracking_uri(before)
    if os.environ.get("MLFLOW_EXPERIMENT_ID") != experiment:
        import mlflow.tracking.fluent

        mlflow.tracking.fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        if experiment is not None:
            os.environ["MLFLOW_EXPERIMENT_ID"] = experiment


@pytest.fixture
def restored_registry() -> Iterator[None]:
    """What the test registers in this process (a notebook's component, a model of its own) undone after
    it: its names leave ``available()`` (test_entries lists the shipped ones), a name it replaced is put
    back. lossexp's own parts, registered as a test first uses them (their modules imported once), stay."""
    from lossexp import registry

    before = {kind: dict(entries) for kind, entries in registry._ENTRIES.items()}
    yield
    for kind, entries in registry._ENTRIES.items():
        for name in [name for name, entry in entries.items()
                     if entry.origin != "lossexp" and before[kind].get(name) is not entry]:
            if name in before[kind]:
                entries[name] = before[kind][name]
            else:
                del entries[name]


def cli(cwd: Path, *args: str, timeout: float = 300, fresh: bool = False, light: bool = False,
        **env: str) -> subprocess.CompletedProcess:
    """``lossexp ARGS`` run as a user runs it, in ``cwd`` with ``env`` added: a separate process, its
    output captured. It is a child forked from this worker's warm process (tests/warm_cli.py:
    TensorFlow, MLflow and lossexp already imported, 5–7 s of CPU saved per command);
    ``light=True`` a child of the light warm process (only the modules every command imports before
    reading its arguments: what it imports beyond them, TensorFlow above all, it imports itself);
    ``fresh=True`` starts a new interpreter, for what happens while modules are imported
    (TensorFlow's notices, what a command imports), as do the ``PYTHON*`` variables the interpreter
    reads when it starts (``PYTHONPATH``, ``PYTHONPROFILEIMPORTTIME``)."""
    if fresh or any(name.startswith("PYTHON") for name in env):
        return subprocess.run([sys.executable, "-m", "lossexp.cli", *args], cwd=cwd, env=lossexp_env(**env),
                              capture_output=True, text=True, timeout=timeout)
    from warm_cli import shared

    return shared(lossexp_env(), light).run(args, cwd, lossexp_env(**env), timeout)


def cli_together(cwd: Path, *commands: Sequence[str], timeout: float = 600) -> List[subprocess.CompletedProcess]:
    """``lossexp ARGS`` for each ARGS of ``commands``, all started at once, in ``cwd``: one process each,
    children forked from this worker's warm process as in :func:`cli`; their results in order once
    all have ended."""
    from warm_cli import shared

    return shared(lossexp_env()).run_together(commands, cwd, lossexp_env(), timeout)


def cli_start(cwd: Path, *args: str, **env: str):
    """``lossexp ARGS`` in the background in ``cwd`` with ``env`` added, as :func:`cli` runs it (a child
    of the warm process, Ctrl-C handled as in a terminal); the ``subprocess.Popen`` calls a test makes
    (``poll``, ``wait``, ``send_signal``, ``kill``, ``communicate``: stdout and stderr as text). No
    other command of this worker runs until it has ended."""
    from warm_cli import shared

    return shared(lossexp_env()).start(args, cwd, lossexp_env(**env))


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(*args, timeout=, fresh=, **env)``: :func:`cli` in ``tmp_path``."""
    return functools.partial(cli, tmp_path)


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """The default store lossexp uses when run from ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"


@pytest.fixture
def all_runs():
    """``all_runs(uri)``: every run of every experiment in the store at ``uri``."""

    def runs(uri: str) -> List:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        experiments = client.search_experiments()
        return client.search_runs([e.experiment_id for e in experiments]) if experiments else []

    return runs


NOT_A_STORE = [  # (what a user points lossexp at by mistake, the start of its one-line refusal)
    ("directory", "is a directory, not an MLflow store"),
    ("text", "is not an SQLite database, so not an MLflow store"),
    ("sqlite", "is an SQLite database but not an MLflow store (its tables: studies)"),
]


def not_a_store(tmp_path: Path, kind: str) -> Path:
    """A path a user may give as a store by mistake: a directory, a text file, another tool's SQLite database."""
    import sqlite3

    if kind == "directory":
        (tmp_path / "outputs").mkdir()
        return tmp_path / "outputs"
    if kind == "text":
        (tmp_path / "notes.txt").write_text("not a database\n")
        return tmp_path / "notes.txt"
    connection = sqlite3.connect(tmp_path / "optuna.db")
    connection.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
    connection.commit()
    connection.close()
    return tmp_path / "optuna.db"


TINY_LAYERS = ("hidden_1", "hidden_2", "output")


def make_tiny_network(seed: int = 0, activation: str = "tanh", regularizer=None):
    """4 → 8 → 4 → 1 functional network with layers ``inputs, hidden_1, hidden_2, output``."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(4,), name="inputs")
    x = keras.layers.Dense(8, activation=activation, name="hidden_1")(inputs)
    x = keras.layers.Dense(4, activation=activation, name="hidden_2", kernel_regularizer=regularizer)(x)
    outputs = keras.layers.Dense(1, name="output")(x)
    return keras.Model(inputs, outputs, name="tiny")


def two_heads(trunk_units: int, head_units: int, seed: int):
    """A shared tanh ``trunk`` under a linear head ``a`` and a head ``b`` with a layer of its own
    (``b_hidden``): ``b`` is the network's last layer with weights, and only ``trunk`` is shared."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,), name="x")
    trunk = keras.layers.Dense(trunk_units, activation="tanh", name="trunk")(inputs)
    hidden = keras.layers.Dense(head_units, activation="tanh", name="b_hidden")(trunk)
    return keras.Model(inputs, {"a": keras.layers.Dense(1, name="a")(trunk),
                                "b": keras.layers.Dense(2, name="b")(hidden)}, name="two_heads")


def subclassed_heads(name: str, trunk: str, heads: Dict[str, Tuple[str, int]], trunk_units: int = 8):
    """A subclassed keras.Model (no symbolic graph to read): a tanh Dense ``trunk`` under one Dense layer
    per output, ``heads`` ``{output: (layer name, units)}``, its outputs a dict by output."""
    import keras

    class Heads(keras.Model):
        def __init__(self) -> None:
            super().__init__(name=name)
            self.trunk = keras.layers.Dense(trunk_units, activation="tanh", name=trunk)
            self.heads = {output: keras.layers.Dense(units, name=layer) for output, (layer, units) in heads.items()}

        def call(self, x):
            shared = self.trunk(x)
            return {output: layer(shared) for output, layer in self.heads.items()}

    return Heads()


def subclassed_network(activation: Optional[str] = "relu", name: str = "subclassed"):
    """A subclassed keras.Model of ``hidden_1`` (8 units, ``activation``; None: linear) and ``output``
    (1 unit): a network of the user's without a symbolic graph."""
    import keras

    class Subclassed(keras.Model):
        def __init__(self) -> None:
            super().__init__(name=name)
            self.hidden_1 = keras.layers.Dense(8, activation=activation, name="hidden_1")
            self.out = keras.layers.Dense(1, name="output")

        def call(self, x):
            return self.out(self.hidden_1(x))

    return Subclassed()


def masked_tagger():
    """A subclassed tagger built on three padded sequences: ``Embedding(mask_zero=True)``, ``rnn`` (an
    ``LSTM(return_sequences=True)``) and a Dense; returns (network, the sequences, rnn's output as float64)."""
    import keras

    class Tagger(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="tagger")
            self.embed = keras.layers.Embedding(10, 3, mask_zero=True)
            self.rnn = keras.layers.LSTM(4, return_sequences=True, name="rnn")
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.rnn(self.embed(x)))

    keras.utils.set_random_seed(0)
    x = np.array([[3, 4, 5, 0, 0], [1, 2, 0, 0, 0], [6, 7, 8, 9, 2]], "int32")
    network = Tagger()
    network(x)
    return network, x, network.rnn(network.embed(x)).numpy().astype(np.float64)


def output_first_network(units: int, activation, **kwargs):
    """A subclassed network whose output layer (``units``, ``activation``) is created — tracked —
    before its hidden ReLU layer: its last tracked layer is not its output layer."""
    import keras

    class OutputFirst(keras.Model):
        def __init__(self) -> None:
            super().__init__(**kwargs)
            self.out = keras.layers.Dense(units, activation=activation)
            self.hidden = keras.layers.Dense(4, activation="relu")

        def call(self, x):
            return self.out(self.hidden(x))

    return OutputFirst()


def numpy_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """−log softmax(logits)[label] of each example (or position: labels of shape logits.shape[:-1])."""
    logits = np.asarray(logits, dtype=np.float64)
    log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_p, np.asarray(labels)[..., None], axis=-1)[..., 0]


def numpy_forward(network, x: np.ndarray) -> Dict[str, np.ndarray]:
    """Outputs of ``hidden_1``, ``hidden_2``, ``output`` of the tanh tiny network, in float64."""
    (w1, b1), (w2, b2), (w3, b3) = (
        [np.asarray(v.numpy(), dtype=np.float64) for v in network.get_layer(name).weights] for name in TINY_LAYERS
    )
    h1 = np.tanh(np.asarray(x, np.float64) @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    return {"hidden_1": h1, "hidden_2": h2, "output": h2 @ w3 + b3}


def compose_model(network, components: Sequence, learning_rate: float = 0.1, loss: str = "mean_squared_error"):
    """The product's own ``compose`` (taps inserted, components attached), compiled with plain SGD."""
    import keras

    from lossexp.training.supervised import compose

    model = compose(network, list(components), task_loss=loss)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss=loss)
    return model


@pytest.fixture
def tiny_network() -> Callable:
    """Factory: ``tiny_network(seed=0)`` → a fresh seeded 4→8→4→1 tanh network."""
    return make_tiny_network


@pytest.fixture
def np_forward() -> Callable:
    return numpy_forward


@pytest.fixture
def compose() -> Callable:
    return compose_model


@pytest.fixture
def regression_data():
    """40 rows of U(0,1)^4 inputs with a smooth target (float32)."""
    rng = np.random.default_rng(123)
    x = rng.random((40, 4)).astype("float32")
    y = (x[:, :1] * x[:, 1:2] + 2.0 * x[:, 1:2] ** 2 - x[:, 3:4]).astype("float32")
    return x, y
