"""Fuzzed input (Hypothesis): whatever a person types ends in a normal result or one line.

Every parser of typed input is driven with generated text — random unicode, near misses of the
valid names and keys, huge numbers, NaN and infinities, empty strings — and every input must end
either normally or in a :class:`~lossexp.errors.ConfigError` (which the CLI prints as one line
``lossexp: error: …`` with exit status 2); any other exception is a crash. Driven in-process:

* ``loss=`` composition rewriting (:func:`lossexp.overrides.rewrite_loss`);
* a component weight / schedule (:func:`lossexp.losses.weight_spec.parse_weight`);
* ``lossexp train ARGS`` up to the moment Hydra would start (:func:`lossexp.cli.hydra_argv`: flag
  parsing, the rewriting, every job composed and validated, the destinations checked), with and
  without ``--from-run``;
* a sweep's jobs (:func:`lossexp.precheck.check_jobs` with ``multirun``);
* a config read back from a store (:func:`lossexp.replay.load_replayed_config`);
* ``lossexp runs``, ``compare`` and ``evaluate`` through :func:`lossexp.cli.main` (stderr captured;
  exit status 2 must come with exactly one ``lossexp: error:`` line).

The budget is fixed (``max_examples`` per test, ``derandomize=True``: the same inputs on every run,
so CI is reproducible; about a minute in all). Inputs never name a place outside the test's
temporary directory or a network address other than a closed port on 127.0.0.1, so the checks
that create directories or contact a tracking server stay local.
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import re
import socket
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crafted_runs import composed_config, crafted_run, dump
from lossexp.errors import ConfigError

#: one fixed budget for every test here; derandomized (the same examples each run), no example database
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
COMPONENTS = ["hist_avg", "activity", "coef", "cross_layer", "kl", "closure", "aux_output", "regularizer", "none"]
GROUPS = ["model", "data", "optimizer", "trainer", "loss", "experiment", "hparams_search", "tracking", "objective"]
KEYS = ["model.hidden_units", "model.filters", "model.kernel_size", "model.latent_dim", "data.n_samples", "data.seed",
        "data.task_loss", "trainer.epochs", "trainer.batch_size", "trainer.validation_split", "trainer.seed",
        "trainer.log_every_n_steps", "trainer.steps_per_execution", "trainer.verbose", "optimizer.learning_rate",
        "optimizer.momentum", "tracking.plots", "tracking.drift", "tracking.heartbeat_s", "tracking.stale_after_s",
        "tracking.experiment", "tracking.run_name", "objective.metric", "objective.direction",
        "loss.hist_avg.weight", "loss.hist_avg.decay", "loss.hist_avg.mode", "loss.activity.layers",
        "loss.activity.weight", "loss.coef.weight", "loss.coef.weight.parametrization", "loss.kl.weight.schedule"]
OPTIONS = ["cnn", "mlp", "vae", "gan", "digits", "regression", "uniform", "positive", "ring", "adam", "sgd",
           "vae_kl_anneal", "optuna_weights", "hist_avg+activity", "minimize", "maximize", "mean", "ema"]
FLAGS = ["--cfg", "job", "--info", "-c", "--help", "-h", "--hydra-help", "--resolve", "-p", "--package",
         "--config-name", "--multi-run", "-x", "--", "-", "--from-run", "--from-run="]


@st.composite
def mutated(draw: Callable, word: str) -> str:
    """A near miss of ``word``: a character dropped, doubled, replaced or swapped, case or space changed."""
    if not word:
        return draw(st.text(max_size=3))
    i = draw(st.integers(0, len(word) - 1))
    kind = draw(st.sampled_from(["drop", "double", "replace", "swap", "upper", "space", "unicode"]))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "replace":
        return word[:i] + draw(st.sampled_from(string.ascii_letters + "._-+=,[]{}:$ ")) + word[i + 1:]
    if kind == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "upper":
        return word.upper()
    if kind == "space":
        return word[:i] + draw(st.sampled_from([" ", "\t", "\u00a0", "\n"])) + word[i:]
    return word[:i] + draw(st.characters(min_codepoint=0x80)) + word[i:]


def names(valid: List[str]) -> st.SearchStrategy[str]:
    """A valid name, a near miss of one, or random text."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid).flatmap(mutated), st.text(max_size=12))


NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=10 ** 300, max_value=10 ** 400), st.integers(max_value=-(10 ** 300)),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, -0.0, 1e-320, 1e308, 2 ** 63, -1]))
NUMBER_TEXT = st.one_of(NUMBERS.map(str), st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999", "-1e999", "0x10",
                                                           "1_000", "+1", ".5", "5.", "1e-400", "٣", "１"]))
VALUES = st.one_of(NUMBER_TEXT, names(OPTIONS + COMPONENTS), st.just(""),
                   st.sampled_from(["[]", "[1", "[1,2]", "{}", "{a: 1}", "null", "true", "???", "${oc.env:HOME}",
                                    "${now:%Y}", "'quoted'", '"x', "a,b", "[hidden_1]", "{schedule: linear}"]),
                   st.text(max_size=20))


def _is_local(token: str) -> bool:
    """No token may name a directory outside the temporary one or a network location (see the docstring)."""
    key, _, value = token.partition("=")
    lowered = key.lower()
    if "uri" in lowered or "hydra" in lowered or "dir" in lowered or "path" in lowered:
        return False
    return "://" not in value and not re.match(r"^\s*[+~]*\s*hydra", token)


OVERRIDES = st.one_of(
    st.tuples(st.sampled_from(["", "+", "++", "~"]), names(KEYS + GROUPS), st.sampled_from(["=", "=", " = ", "=="]),
              VALUES).map("".join),
    st.tuples(st.just("loss="), st.lists(names(COMPONENTS), max_size=4).map("+".join)).map("".join),
    st.text(max_size=30),
).filter(_is_local)


#: what argparse reads as --multirun: -m, a cluster of short flags holding m, an abbreviation of --multirun
_MULTIRUN = re.compile(r"^(-[^-]*m|--m)")


@functools.lru_cache(maxsize=None)
def small_config_text() -> str:
    """The config.yaml a small lossexp job logs."""
    return dump(composed_config())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def isolated(directory: Path) -> Iterator[None]:
    """Run in ``directory`` with no tracking URI, credentials or from-run marker from the environment."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "LOSSEXP_FROM_RUN",
                 "LOSSEXP_FROM_RUN_EXPERIMENT"):
        os.environ.pop(name, None)
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def normal_or_config_error(call: Callable[[], Any]) -> Any:
    """``call()``'s result, or None for a ConfigError with a one-line message; any other exception fails."""
    try:
        return call()
    except ConfigError as error:
        message = str(error)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return None


# --- pure parsers -------------------------------------------------------------------------------------------
@settings(FUZZ, max_examples=1000)
@given(st.lists(st.one_of(OVERRIDES, st.tuples(st.just("loss="), st.text(max_size=25)).map("".join)), max_size=5))
def test_loss_composition_rewriting(overrides: List[str]) -> None:
    from lossexp.overrides import rewrite_loss

    result = normal_or_config_error(lambda: rewrite_loss(overrides, COMPONENTS[:-1]))
    if result is not None:
        assert all(isinstance(token, str) for token in result) and len(result) >= len(overrides)


WEIGHT_KEYS = ["schedule", "start", "end", "steps", "delay", "midpoint", "sharpness", "cycles", "ratio", "value",
               "trainable", "parametrization", "lr", "epsilon"]
WEIGHT_VALUES = st.one_of(NUMBERS, st.booleans(), st.none(), names(["constant", "linear", "sigmoid", "cyclical", "raw",
                                                                    "softplus", "exp", "uncertainty", "dual"]))
WEIGHTS = st.one_of(WEIGHT_VALUES, st.lists(NUMBERS, max_size=3),
                    st.dictionaries(names(WEIGHT_KEYS), st.one_of(WEIGHT_VALUES, st.lists(NUMBERS, max_size=2)),
                                    max_size=6))


@settings(FUZZ, max_examples=2000)
@given(WEIGHTS)
def test_weight_and_schedule_specs(spec: Any) -> None:
    from lossexp.losses.weight_spec import parse_weight

    parsed = normal_or_config_error(lambda: parse_weight("loss.hist_avg.weight", spec))
    if parsed is not None:
        numbers = [parsed.value, parsed.start, parsed.end, parsed.steps, parsed.delay, parsed.midpoint,
                   parsed.sharpness, parsed.cycles, parsed.ratio, parsed.lr, parsed.epsilon]
        assert all(isinstance(n, float) and math.isfinite(n) for n in numbers), parsed


YAML_TEXT = st.one_of(
    st.text(max_size=60),
    st.dictionaries(names(["model", "data", "loss", "trainer", "tracking", "hydra", "defaults", "objective"]),
                    st.one_of(VALUES, st.dictionaries(names(KEYS + ["name", "uri"]), VALUES, max_size=3)),
                    max_size=4).map(dump),
)


@settings(FUZZ, max_examples=1000)
@given(YAML_TEXT)
def test_a_config_read_back_from_a_store(text: str) -> None:
    from lossexp.replay import DESTINATION_KEYS, load_replayed_config

    config = normal_or_config_error(lambda: load_replayed_config(text, "the config.yaml of run 'fuzz'"))
    if config is not None:
        assert "${" not in str(config) and "hydra" not in config and "defaults" not in config
        if isinstance(config["tracking"], dict):
            assert all(config["tracking"][key] in (None, "lossexp", []) for key in DESTINATION_KEYS)


# --- lossexp train, up to the moment Hydra would start -----------------------------------------------------------
@dataclass(frozen=True)
class Workdir:
    path: Path
    run_id: str


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Workdir:
    """A directory whose default store holds one run logged by lossexp (crafted: no training)."""
    directory = tmp_path_factory.mktemp("fuzz")
    return Workdir(directory, crafted_run(f"sqlite:///{directory / 'outputs' / 'mlflow.db'}", dump(composed_config())))


def train_tokens(run_id: str) -> st.SearchStrategy[List[str]]:
    """``lossexp train`` arguments: overrides, Hydra's flags and near misses, ``--from-run`` with the real
    run id, a near miss of it or random text, and destinations that stay local; never a sweep (``-m``)."""
    flags = st.one_of(st.sampled_from(FLAGS), st.sampled_from(FLAGS).flatmap(mutated))
    from_run = st.one_of(st.just(["--from-run", run_id]), st.just([f"--from-run={run_id}"]),
                         st.tuples(st.sampled_from(["--from-run", "--from-run="]),
                                   st.one_of(st.just(run_id).flatmap(mutated), st.text(max_size=40))).map(
                             lambda t: [t[0], t[1]] if t[0] == "--from-run" else [t[0] + t[1]]))
    uris = st.sampled_from([f"tracking.uri=http://127.0.0.1:{closed_port()}", "tracking.uri=sqlite:///store/m.db",
                            "tracking.uri=", "tracking.uri=null", "hydra.run.dir=runs/x", "hydra.run.dir=/proc/x"])
    single = st.one_of(OVERRIDES, flags, uris).map(lambda token: [token])
    return st.lists(st.one_of(single, from_run),
                    max_size=5).map(lambda groups: [token for group in groups for token in group]).filter(
        lambda tokens: not any(_MULTIRUN.match(token) for token in tokens))  # a sweep's builds: TensorFlow


@settings(FUZZ, max_examples=200, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_train_arguments_and_from_run(workdir: Workdir, data) -> None:
    from lossexp.cli import hydra_argv

    tokens = data.draw(train_tokens(workdir.run_id))
    with isolated(workdir.path):
        argv = normal_or_config_error(lambda: hydra_argv(tokens))
    if argv is not None:
        assert all(isinstance(token, str) for token in argv)


@settings(FUZZ, max_examples=200, suppress_health_check=list(HealthCheck))
@given(overrides=st.lists(st.one_of(OVERRIDES, st.tuples(names(KEYS), st.lists(VALUES, min_size=2, max_size=3)).map(
    lambda t: f"{t[0]}={','.join(t[1])}")), max_size=4))
def test_a_sweeps_jobs(workdir: Workdir, overrides: List[str]) -> None:
    from lossexp.precheck import check_jobs

    with isolated(workdir.path):
        jobs = normal_or_config_error(lambda: check_jobs(overrides, multirun=True))
    if jobs is not None:
        assert len(jobs) >= 1


# --- the report commands and evaluate, through lossexp.cli.main -------------------------------------------------
def run_main(argv: List[str]) -> None:
    """``lossexp ARGV`` in-process: exit 0, or exit 2 with exactly one ``lossexp: error:`` line on stderr."""
    from lossexp.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    lines = stderr.getvalue().strip().splitlines()
    assert code in (0, 2, None), (argv, code, stderr.getvalue()[-2000:])
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("lossexp: error: "), (argv, stderr.getvalue()[-2000:])


def report_tokens(run_id: str) -> st.SearchStrategy[List[str]]:
    """Options of ``lossexp runs`` / ``compare`` (and near misses) with values; ``--uri`` (also as argparse's
    abbreviations ``--u``, ``--ur``) only names stores in the working directory or a closed local port."""
    options = ["--experiment", "-e", "--sweep", "--limit", "--reap", "--stale-after", "--out", "--help"]
    uris = ["sqlite:///outputs/mlflow.db", "sqlite:///nowhere/m.db", "outputs/mlflow.db", "", "mlruns", ".",
            f"http://127.0.0.1:{closed_port()}", "sqlite:////proc/m.db", "sqlite://", "nonsense:thing"]
    value = st.one_of(VALUES, st.just(run_id), st.just(run_id).flatmap(mutated), st.just("lossexp")).filter(
        lambda v: "://" not in v)
    option = names(options).filter(lambda o: not o.startswith("--u"))
    return st.lists(st.one_of(st.tuples(option, value).map(list), option.map(lambda o: [o]), value.map(lambda v: [v]),
                              st.tuples(st.sampled_from(["--uri", "--ur", "--uri="]), st.sampled_from(uris)).map(
                                  lambda t: [t[0] + t[1]] if t[0].endswith("=") else list(t))),
                    max_size=4).map(lambda groups: [token for group in groups for token in group])


@settings(FUZZ, max_examples=400, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_runs_and_compare_arguments(workdir: Workdir, data) -> None:
    command = data.draw(st.sampled_from(["runs", "compare"]))
    tokens = data.draw(report_tokens(workdir.run_id))
    with isolated(workdir.path):
        run_main([command, *tokens])


@pytest.fixture(scope="module")
def model_files(workdir: Workdir) -> List[str]:
    """Model files ``lossexp evaluate`` may be given: none, corrupt, foreign, and one that passes the archive
    check (then fails in Keras), with a fuzzed ``config.yaml`` beside it."""
    import json
    import zipfile

    (workdir.path / "run").mkdir()
    with zipfile.ZipFile(workdir.path / "run" / "model.keras", "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps({"registered_name": "lossexp>ComposedModel", "config": {}}))
    (workdir.path / "corrupt.keras").write_bytes(b"PK\x03\x04 not a zip")
    return ["run/model.keras", "corrupt.keras", "missing.keras", "run", "", "-", "--help", "model=mlp"]


@settings(FUZZ, max_examples=300, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_evaluate_arguments_and_the_config_beside_the_model(workdir: Workdir, model_files: List[str], data) -> None:
    model = data.draw(st.one_of(st.sampled_from(model_files), st.sampled_from(model_files).flatmap(mutated),
                                st.text(max_size=15)).filter(lambda m: not m.startswith("/")))
    overrides = data.draw(st.lists(OVERRIDES, max_size=3))
    (workdir.path / "run" / "config.yaml").write_text(data.draw(st.one_of(YAML_TEXT, st.just(small_config_text()))))
    with isolated(workdir.path):
        run_main(["evaluate", model, *overrides])
