"""Every mistake a user can type is answered with one line, exit status 2, and nothing recorded.

Each row of :data:`BAD_INPUTS` runs ``lossexp ...`` as a user would (a process of its own whose
working directory is a fresh temporary directory, so the default SQLite store would land there:
a child of a light warm process that has not imported TensorFlow, or for the rows found once
TensorFlow has loaded a child of the warm process, ``conftest.cli``) and checks: exit status 2;
stderr is exactly one line ``lossexp: error: ...`` (besides TensorFlow's own start-up lines for
the few rows detected once TensorFlow has loaded) holding the row's
expected pieces — the key, the bad value and the valid choices; no traceback; and no MLflow run in
any store under the directory. ``tests/bad_inputs_table.py`` turns the same table into
``docs/bad_inputs.md``.

Placeholders in arguments: ``{tmp}`` (the working directory), ``{closed_port}`` (a port nothing
listens on), ``{http_port}`` (a web server that is not MLflow's), ``{auth_port}`` (a server that
answers ``/health`` and wants credentials for everything else, as MLflow's basic-auth server
does), the names of :data:`FILES` (bad files written into the working directory), and those a
row's :data:`SETUPS` entry returns (``{crafted_run}``: a run someone else logged, in the
working directory's default store; ``{parent}``, ``{child}``, ``{holder}``: a sweep's parent run, one of
its children, the process holding it; the runs a setup makes are the only ones allowed there, unchanged).
"""
from __future__ import annotations

import functools
import http.server
import json
import re
import socket
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from conftest import cli, local_http_server

#: keeps every training row small, should a check let it through
QUICK = ("trainer.epochs=1", "data.n_samples=200", "tracking.plots=false")
COMPONENTS = "activity, aux_output, closure, coef, cross_layer, hist_avg, kl, mtl_toy_l1, mtl_toy_l2, regularizer"
#: TensorFlow's C++ start-up lines (absl), printed whatever TF_CPP_MIN_LOG_LEVEL says
_TF_NOISE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")


@dataclass(frozen=True)
class Bad:
    """One bad input: the command line after ``lossexp``, and what its error line must contain."""

    id: str
    what: str  # the issue's category, for the docs table
    args: Tuple[str, ...]
    expect: Tuple[str, ...]  # substrings of the error line: key, bad value, valid choices
    tensorflow: bool = False  # detected once TensorFlow has loaded (the network is built)
    max_seconds: float = 0.0  # a bound on the elapsed time, when it matters
    #: files of a user project written into the working directory first: (relative path, text)
    project: Tuple[Tuple[str, str], ...] = ()
    setup: str = ""  # a key of SETUPS: what the working directory holds before the command runs


def train(*args: str) -> Tuple[str, ...]:
    return ("train", *QUICK, *args)


def train_on(*args: str) -> Tuple[str, ...]:
    """A training row whose data has no ``n_samples`` (the user's own files)."""
    return ("train", "trainer.epochs=1", "tracking.plots=false", *args)


#: a project's component with one option besides its weight, ``alpha``, for the rows about its YAML's mistakes
WITH_ALPHA = ("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
              "    def __init__(self, weight=0.1, alpha: float = 0.5, **kwargs):\n"
              "        super().__init__(weight=weight, **kwargs)\n\n"
              "    def term(self, context):\n        return ops.mean(context.y_pred)\n")


def project(source: str, *files: Tuple[str, str]) -> Tuple[Tuple[str, str], ...]:
    """A user project: ``mine.py`` (its one module) holding ``source``, and more files."""
    header = "import keras\nfrom keras import ops\nimport lossexp\n\n"
    return (("pyproject.toml", '[tool.lossexp]\nmodules = ["mine"]\n'), ("mine.py", header + source), *files)


#: a training regime of the user's and a model it trains (model=mine): its build() and callbacks() to fill in
REGIME = ("from lossexp.training.trainer import Trainer\n\n\n@lossexp.register_trainer('mine')\nclass Mine(Trainer):\n"
          "    tasks = ('regression',)\n\n    def build(self, data, network=None, components=None):\n{build}\n"
          "{callbacks}\n\n@lossexp.register_model('mine', trainer='mine')\ndef mine(data):\n    return None\n")
#: a model of the user's, selected with model=mine (its builder in mine.py)
MODEL_YAML = ("conf/model/mine.yaml", "name: mine\n")
DENSE = ("@lossexp.register_model('mine')\ndef mine(data, units: int = 3):\n"
         "    inputs = keras.Input(data.input_shape)\n"
         "    return keras.Model(inputs, keras.layers.Dense(units)(inputs))\n")


def sweep(*args: str) -> Tuple[str, ...]:
    return ("train", "-m", *QUICK, *args)


OPTUNA = ("hparams_search=optuna_weights",)


BAD_INPUTS: List[Bad] = [
    # --- names that do not exist --------------------------------------------------------------
    Bad("unknown-model", "unknown model", train("model=cnnn"),
        ("Unknown model 'cnnn'", "applications, cnn, gan, keras_file, mlp, point, vae")),
    Bad("unknown-data", "unknown data", train("data=mnist"),
        ("Unknown data 'mnist'", "csv, digits, images, npz, parquet, positive, regression, ring, steps, uniform")),
    Bad("unknown-component", "unknown component", train("loss=hist_avg+foo"),
        ("Unknown loss component 'foo'", COMPONENTS)),
    Bad("unknown-component-in-a-list", "unknown component", train("loss=[hist_avg,'activty']"),  # Hydra's "Could not load"
        ("Unknown loss component 'activty': valid choices are " + COMPONENTS,)),
    Bad("repeated-component-in-a-list", "duplicate component", train("loss=[hist_avg,hist_avg]"),  # trained one
        ("Invalid value for loss: expected each component at most once (hist_avg repeats), got '[hist_avg,hist_avg]'",)),
    Bad("unknown-component-in-a-choice", "unknown component", sweep("loss=choice([hist_avg],hist_avg+activty)"),
        ("Unknown loss component 'activty': valid choices are " + COMPONENTS,)),  # was 'choice([hist_avg]'
    Bad("composition-of-a-range", "loss=+", sweep("loss=range(1,3)"),
        ("Invalid value for loss: expected component names joined by '+', a sweep of them (loss=a+b,c), or "
         "choice(a+b,c), got 'range(1,3)'",)),
    Bad("unknown-component-kind", "unknown component", train("+loss.second={kind: coeff}"),
        ("Unknown loss component 'coeff' in loss.second.kind", COMPONENTS)),
    Bad("unknown-optimizer", "unknown optimizer", train("optimizer=rmsporp"),
        ("Unknown optimizer 'rmsporp'", "adadelta, adafactor, adagrad, adam, adamax, adamw", "rmsprop, sgd")),
    Bad("unknown-task-loss", "unknown task loss", train("model=mlp", "data=regression", "task.loss=hubr"),
        ("Unknown task.loss 'hubr'", "huber", "mean_squared_error", "squared_log_error"), tensorflow=True),
    Bad("unknown-command", "unknown command", ("trian", "model=mlp"), ("Unknown command 'trian'", "train")),
    # --- misspelled keys ------------------------------------------------------------------------
    Bad("misspelled-trainer-key", "misspelled key", train("trainer.epohcs=3"),
        ("Unknown key trainer.epohcs", "batch_size, checkpoint, distribute, epochs, jit_compile")),
    Bad("misspelled-section", "misspelled key", train("+traner.epochs=3"),
        ("Unknown key traner", "data, loss, model, objective, optimizer, task, tracking, trainer")),
    Bad("misspelled-component-option", "misspelled key", train("+loss.activity.strength=2"),
        ("Unknown key loss.activity.strength", "layers, norm, reduction, weight")),
    Bad("misspelled-shipped-component-key", "misspelled key", train("loss.hist_avg.weigth=0.1"),  # TensorFlow loaded
        ("Unknown key loss.hist_avg.weigth: valid keys are decay, distance, layers, mode, weight",)),  # for a hint
    Bad("unknown-flag", "misspelled key", ("train", "--multi-run", "model=mlp"),
        ("unrecognized arguments: --multi-run", "lossexp train --help")),
    # --- wrong types ----------------------------------------------------------------------------
    Bad("epochs-not-int", "wrong type", train("trainer.epochs=abc"), ("trainer.epochs", "int", "'abc'")),
    Bad("plots-not-bool", "wrong type", train("tracking.plots=maybe"), ("tracking.plots", "bool", "'maybe'")),
    Bad("gradients-every-zero", "out of range", train("tracking.gradients_every_n_steps=0"),
        ("tracking.gradients_every_n_steps", "a whole number of steps >= 1", "0")),
    Bad("weight-not-number", "wrong type", train("loss.hist_avg.weight=abc"),
        ("loss.hist_avg.weight", "a finite number >= 0.0", "'abc'")),
    Bad("component-not-mapping", "wrong type", train("loss.hist_avg=3"),
        ("loss.hist_avg", "a mapping of option to value", "3")),
    Bad("override-syntax", "wrong type", train("trainer.epochs=[1"), ("trainer.epochs=[1", "Invalid override")),
    Bad("name-of-another-part-than-the-group-chose", "misspelled key", train("weighting=dwa", "weighting.name=mgda"),
        ("Unknown key weighting.temperature: valid keys are normalization (weighting.name=mgda keeps the options of "
         "weighting=dwa, which chose the YAML: choose weighting=mgda instead)",)),  # blamed a key never typed
    Bad("plus-on-a-key-the-config-has", "wrong type", train("+trainer.epochs=3"),  # was Hydra's "Could not append"
        ("Invalid override '+trainer.epochs=3': trainer.epochs is in the config already; set it without the '+': "
         "trainer.epochs=3",)),
    Bad("sweep-trailing-comma", "wrong type", sweep("model=mlp,"),  # was the parser's token names, no override
        ("Invalid override 'model=mlp,': it ends where a value is expected", "a sweep's values key=a,b")),
    # --- weights and schedules ------------------------------------------------------------------
    Bad("negative-weight", "negative or NaN weight", train("loss.activity.weight=-1"),
        ("loss.activity.weight", "a finite number >= 0.0", "-1")),
    Bad("nan-weight", "negative or NaN weight", train("loss.hist_avg.weight=nan"),
        ("loss.hist_avg.weight", "a finite number >= 0.0", "nan")),
    Bad("schedule-zero-steps", "schedule with bad bounds",
        train("model=vae", "loss.kl.weight={schedule: linear, steps: 0}"),
        ("loss.kl.weight.steps", "a finite number > 0.0", "got 0")),
    Bad("schedule-negative-start", "schedule with bad bounds",
        train("model=vae", "loss.kl.weight={schedule: linear, start: -1, steps: 100}"),
        ("loss.kl.weight.start", ">= 0.0", "-1")),
    Bad("schedule-ratio-above-1", "schedule with bad bounds",
        train("model=vae", "loss.kl.weight={schedule: cyclical, steps: 100, ratio: 1.5}"),
        ("loss.kl.weight.ratio", "0.0 < value <= 1.0", "1.5")),
    Bad("schedule-more-cycles-than-steps", "schedule with bad bounds",
        train("model=vae", "loss.kl.weight={schedule: cyclical, steps: 2, cycles: 4}"),
        ("loss.kl.weight.cycles", "at most steps (2)", "4")),
    Bad("schedule-unknown", "schedule with bad bounds", train("loss.hist_avg.weight={schedule: exponential}"),
        ("loss.hist_avg.weight.schedule", "'exponential'", "constant, linear, sigmoid, cyclical")),
    Bad("unknown-parametrization", "unknown parametrization",
        train("loss=coef", "loss.coef.weight.parametrization=sigmoid"),
        ("loss.coef.weight.parametrization", "'sigmoid'", "raw, softplus, exp, uncertainty, dual")),
    # --- trainer and optimizer ranges -----------------------------------------------------------
    Bad("epochs-0", "epochs or batch size 0", train("trainer.epochs=0"),
        ("trainer.epochs", "an integer >= 1", "got 0")),
    Bad("batch-size-0", "epochs or batch size 0", train("trainer.batch_size=0"),
        ("trainer.batch_size", "an integer >= 1", "got 0")),
    Bad("validation-split-1", "validation split outside [0, 1)", train("trainer.validation_split=1"),
        ("trainer.validation_split", "0 <= validation_split < 1", "got 1")),
    Bad("validation-split-negative", "validation split outside [0, 1)", train("trainer.validation_split=-0.1"),
        ("trainer.validation_split", "0 <= validation_split < 1", "-0.1")),
    Bad("negative-learning-rate", "value out of range", train("optimizer.learning_rate=-1"),
        ("optimizer.learning_rate", "a positive finite number", "-1")),
    Bad("cnn-on-tabular-data", "model incompatible with the data", train("model=cnn", "data=regression"),
        ("Invalid value for model", "cnn needs image data", "'regression'"), tensorflow=True),
    Bad("unknown-option-value", "value out of range", train("loss.hist_avg.mode=median"),
        ("loss.hist_avg.mode", "mean, ema, previous", "'median'"), tensorflow=True),
    Bad("gan-without-ring", "model incompatible with the data", train("model=gan"),
        ("Invalid value for data", "expected generation data for model=gan (adversarial regime: data=ring)",
         "got 'digits, classification data")),
    Bad("gan-component-inserting-layers", "component incompatible with the model",
        train("experiment=gan_ring_hist_avg", "loss=activity"),
        ("Invalid loss component for a GAN", "loss.activity (activity)", "inserts layers into the network"),
        tensorflow=True),
    Bad("gan-unknown-player", "value out of range",
        train("experiment=gan_ring_hist_avg", "+loss.hist_avg.player=critic"),
        ("loss.hist_avg.player", "generator, discriminator, both", "'critic'"), tensorflow=True),
    Bad("gan-mirrored", "value out of range", train("experiment=gan_ring_hist_avg", "trainer.distribute=mirrored",
                                                    "trainer.steps_per_execution=1"),
        ("Invalid value for trainer.distribute", "null for model=gan (its training regime runs on one device)",
         "got 'mirrored'")),
    Bad("gan-maxout-one-piece", "value out of range", train("experiment=ring_pacgan", "model.maxout_pieces=1"),
        ("Invalid value for model.maxout_pieces", "null or an integer >= 2", "got 1")),
    Bad("gan-unknown-updates", "value out of range", train("experiment=ring_pacgan", "model.updates=both"),
        ("Invalid value for model.updates", "'alternating', 'simultaneous'", "got 'both'")),
    Bad("gan-pack-zero", "value out of range", train("experiment=ring_pacgan2", "model.pack=0"),
        ("Invalid value for model.pack", "an integer >= 1", "got 0")),
    Bad("gan-batch-norm-momentum", "value out of range",
        train("experiment=ring_pacgan", "model.batch_norm_momentum=1.5"),
        ("Invalid value for model.batch_norm_momentum", "0 < momentum < 1", "got 1.5")),
    Bad("gan-unknown-initializer", "unknown initializer",
        train("experiment=ring_pacgan", "model.kernel_initializer=gaussian"),
        ("Invalid value for model.kernel_initializer", "glorot_uniform", "random_normal", "got 'gaussian'"),
        tensorflow=True),
    Bad("gan-initializer-option", "misspelled key",
        train("experiment=ring_pacgan", "+model.kernel_initializer.sttdev=0.1"),
        ("Invalid value for model.kernel_initializer (random_normal)", "unexpected keyword argument 'sttdev'"),
        tensorflow=True),
    Bad("jit-compile-not-bool", "wrong type", train("trainer.jit_compile=maybe"),
        ("Invalid value for trainer.jit_compile", "Optional[bool]", "got 'maybe'")),
    Bad("player-without-gan", "misspelled key",
        train("model=mlp", "data=regression", "+loss.hist_avg.player=both"),
        ("Unknown key loss.hist_avg.player", "valid keys are decay, distance, kind, layers, mode, weight")),
    Bad("unknown-experiment", "unknown experiment", train("experiment=vae_kl_annel"),
        ("Unknown experiment 'vae_kl_annel'", "valid choices are", "cross_layer_coef", "vae_kl_anneal")),
    Bad("unknown-schedule", "weight schedule with bad bounds", train("experiment=vae_kl_anneal",
                                                                     "loss.kl.weight.schedule=cosine"),
        ("loss.kl.weight.schedule", "'cosine'", "constant, linear, sigmoid, cyclical")),
    Bad("vae-log-var-shape", "layer name not in the model",
        train("model=vae", "loss.kl.mean_layer=encoder_hidden_1"),
        ("loss.kl.log_var_layer", "a layer with the output shape of encoder_hidden_1"), tensorflow=True),
    Bad("point-on-data", "component incompatible with the model", train("model=point"),
        ("Invalid value for data", "objective data for model=point", "data=steps", "'digits, classification data")),
    Bad("point-init-empty", "value out of range", train("experiment=mtl_toy", "model.init=[]"),
        ("model.init", "a non-empty list of finite numbers", "[]")),
    Bad("point-without-components", "component incompatible with the model", train("experiment=mtl_toy", "loss=none"),
        ("Invalid value for loss", "model=point is trained on its loss components alone", "loss=[mtl_toy_l1,mtl_toy_l2]"),
        tensorflow=True),
    # --- the loss composition -------------------------------------------------------------------
    Bad("loss-plus-alone", "loss=+", train("loss=+"), ("Invalid value for loss", "joined by '+'", "'+'")),
    Bad("loss-double-plus", "loss=a++b", train("loss=hist_avg++activity"),
        ("Invalid value for loss", "joined by '+'", "'hist_avg++activity'")),
    Bad("loss-duplicate", "duplicate component", train("loss=hist_avg+hist_avg"),
        ("Invalid value for loss", "each component at most once", "'hist_avg+hist_avg'")),
    Bad("loss-none-in-composition", "loss=a++b", train("loss=none+hist_avg"),
        ("Invalid value for loss", "'none' alone", "'none+hist_avg'")),
    Bad("loss-empty", "loss=+", train("loss="), ("Invalid value for loss", "or none", "got ''")),
    # was Hydra's "Ambiguous value for argument 'loss=[hist_avg],[activity]'": lossexp's rewriting, no word of -m
    Bad("sweep-without-m-loss", "several values without -m", train("loss=hist_avg,activity"),
        ("Invalid override 'loss=hist_avg,activity': several values are a sweep, which needs -m (lossexp train -m "
         "loss=hist_avg,activity); for one run, components are joined with '+' (loss=hist_avg+activity)",)),
    Bad("sweep-without-m-group", "several values without -m", train("model=mlp,cnn"),
        ("Invalid override 'model=mlp,cnn': several values are a sweep, which needs -m (lossexp train -m "
         "model=mlp,cnn)",)),
    Bad("sweep-without-m-range", "several values without -m", train("trainer.seed=range(0,3)"),
        ("Invalid override 'trainer.seed=range(0,3)': several values are a sweep, which needs -m",)),
    Bad("sweep-without-m-option", "several values without -m", train("model=mlp", "model.hidden_units=8,16"),
        ("a list is model.hidden_units=[8,16], a text with a comma is quoted: model.hidden_units='8,16'",)),
    # --- found once the network is built (TensorFlow) --------------------------------------------
    Bad("layer-not-in-model", "layer name not in the model", train("loss.activity.layers=[dense_9]"),
        ("loss.activity.layers", "'dense_9'", "inputs, conv_1, pool_1, conv_2, pool_2, flatten, hidden_1, output"),
        tensorflow=True),
    Bad("layer-is-an-input", "a layer that computes nothing (an input layer)",
        train("model=mlp", "data=regression", "loss.activity.layers=[inputs]"),
        ("Invalid value for loss.activity.layers: expected a layer that computes something", "got 'inputs'",
         "hidden_1, hidden_2, output"), tensorflow=True),
    Bad("weights-of-an-input", "a layer that computes nothing (an input layer)",
        train("model=mlp", "data=regression", "loss.hist_avg.layers=[inputs]"),
        ("Invalid value for loss.hist_avg.layers: expected layers with trainable weights", "got 'inputs'",
         "inputs (an input layer) has none"), tensorflow=True),
    Bad("kl-without-vae", "component incompatible with the model",
        train("model=mlp", "data=regression", "loss=kl"),
        ("loss.kl", "needs model=vae", "inputs, hidden_1, hidden_2, output"), tensorflow=True),
    Bad("hist-avg-decay-above-1", "hist_avg.decay outside (0, 1)", train("model=mlp", "loss.hist_avg.decay=1.5"),
        ("loss.hist_avg.decay", "0.0 < decay < 1.0", "1.5"), tensorflow=True),
    # --- where runs go --------------------------------------------------------------------------
    Bad("tracking-server-unreachable", "unreachable tracking server",
        train("tracking.uri=http://127.0.0.1:{closed_port}"),
        ("tracking.uri", "'http://127.0.0.1:{closed_port}'", "a reachable MLflow tracking server",
         "Connection refused"), max_seconds=10),
    Bad("tracking-server-not-mlflow", "unreachable tracking server",
        train("tracking.uri=http://127.0.0.1:{http_port}"),
        ("tracking.uri", "'http://127.0.0.1:{http_port}'", "HTTP 404, not an MLflow server"), max_seconds=10),
    Bad("tracking-store-unwritable", "unwritable output directory", train("tracking.uri=sqlite:////proc/lossexp/m.db"),
        ("tracking.uri", "'sqlite:////proc/lossexp/m.db'", "a directory lossexp can create and write")),
    Bad("tracking-store-not-mlflow", "unwritable output directory", train("tracking.uri=sqlite:///notes.txt"),
        ("tracking.uri", "sqlite:///notes.txt is not an SQLite database, so not an MLflow store"),
        project=(("notes.txt", "not a database\n"),)),
    Bad("output-dir-in-proc", "unwritable output directory", train("hydra.run.dir=/proc/lossexp/run"),
        ("hydra.run.dir", "'/proc/lossexp/run'",  # /proc exists: not "No such file or directory"
         "a directory lossexp can create and write (/proc: no directory can be created in it)")),
    Bad("output-dir-under-a-file", "unwritable output directory", train("hydra.run.dir={tmp}/a_file/run"),
        ("hydra.run.dir", "'{tmp}/a_file/run'", "is not a directory")),
    # --- the user's own project: module, model, data, component -------------------------------
    Bad("project-syntax-error", "error in the user's code", train("model=mlp", "data=regression"),
        ("Invalid project module 'mine'", "mine.py:5", "SyntaxError"), tensorflow=True,
        project=project("def broken(:\n")),
    Bad("project-module-missing", "error in the user's code", train("model=mlp", "data=regression"),  # was at
        ("Invalid project module 'mytermz' ({tmp}/pyproject.toml, [tool.lossexp] modules): no mytermz.py nor "  # importlib's
         "mytermz/__init__.py in {tmp}",),
        project=(("pyproject.toml", '[tool.lossexp]\nmodules = ["mytermz"]\n'),)),
    Bad("project-builder-raises", "error in the user's code", train("model=mine", "data=regression"),
        ("Invalid model 'mine': building it failed at", "mine.py:7", "ValueError: no good"), tensorflow=True,
        project=project("@lossexp.register_model('mine')\ndef mine(data):\n    raise ValueError('no good')\n",
                        MODEL_YAML)),
    Bad("project-builder-not-keras", "error in the user's code", train("model=mine", "data=regression"),
        ("Invalid value for model: expected a builder returning a keras.Model (model=mine at ", "mine.py:5)",
         "builtins.str"),
        tensorflow=True,
        project=project("@lossexp.register_model('mine')\ndef mine(data):\n    return 'a model'\n", MODEL_YAML)),
    Bad("project-model-own-train-step", "error in the user's code", train("model=mine", "data=regression"),
        ("Invalid value for model: expected a network that lossexp's step trains",
         "model=mine whose class Mine overrides train_step, which training would silently skip"), tensorflow=True,
        project=project("class Mine(keras.Model):\n    def train_step(self, data):\n        return {}\n\n\n"
                        "@lossexp.register_model('mine')\ndef mine(data):\n"
                        "    inputs = keras.Input(data.input_shape)\n"
                        "    return Mine(inputs, keras.layers.Dense(1)(inputs))\n", MODEL_YAML)),
    Bad("project-output-shape", "model incompatible with the data", train("model=mine", "data=regression"),
        ("Invalid value for model: expected outputs of shape (1,) like the targets for data 'regression'",
         "model=mine with outputs of shape (3,)"), tensorflow=True, project=project(DENSE, MODEL_YAML)),
    Bad("project-data-several-inputs", "model incompatible with the data", train_on("model=mlp", "data=mine"),
        ("Invalid value for data (mine): expected one input array, as the shipped models take",
         "data.input_shapes", "got 'several inputs (a, b)'"), tensorflow=True,
        project=project("@lossexp.register_data('mine')\ndef mine():\n    import numpy as np\n"
                        "    x = np.zeros((20, 2), 'float32')\n    return {'a': x, 'b': x}, np.arange(20) % 2\n",
                        ("conf/data/mine.yaml", "name: mine\n"))),
    Bad("project-option-typo", "misspelled key", train("model=mine", "data=regression", "+model.unitz=4"),
        ("Unknown key model.unitz: valid keys are units",), tensorflow=True, project=project(DENSE, MODEL_YAML)),
    Bad("project-option-not-in-yaml", "misspelled key", train("model=mine", "data=regression", "model.units=4"),
        ("Unknown key model.units: valid keys are name; it is an option of model=mine that its YAML does not set: "
         "+model.units=4 sets it",), tensorflow=True, project=project(DENSE, MODEL_YAML)),
    Bad("project-loss-yaml-without-its-entry", "misspelled key", train("model=mlp", "data=regression", "loss=mine"),
        ("Invalid config file conf/loss/mine.yaml: it holds no entry 'mine' (write 'mine: {weight: …, …}' with its "
         "options, or delete the file: its class's defaults then; lossexp components mine lists them)",),
        project=project("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
                        "    def term(self, context):\n        return ops.mean(context.y_pred)\n",
                        ("conf/loss/mine.yaml", "# the center loss: options to come\n"))),  # trained the task alone, exit 0
    Bad("project-loss-yaml-of-another-name", "misspelled key", train("model=mlp", "data=regression", "loss=mine"),
        ("Invalid config file conf/loss/mine.yaml: it holds no entry 'mine' but 'mien' (write 'mine: {weight: …, …}'",),
        project=project("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
                        "    def term(self, context):\n        return ops.mean(context.y_pred)\n",
                        ("conf/loss/mine.yaml", "mien: {weight: 0.1}\n"))),  # "Unknown loss component 'mien'", no file
    Bad("project-loss-yaml-key-the-class-lacks", "misspelled key", train("model=mlp", "data=regression", "loss=mine"),
        ("Unknown key loss.mine.alpah (set in conf/loss/mine.yaml:3): valid keys are alpha, weight, kind",),
        tensorflow=True,  # named no file: the user never typed the key
        project=project(WITH_ALPHA, ("conf/loss/mine.yaml", "mine:\n  weight: 0.1\n  alpah: 0.3\n"))),
    Bad("project-loss-yaml-value-of-another-type", "wrong type", train("model=mlp", "data=regression", "loss=mine"),
        ("Invalid value for loss.mine.alpha (set in conf/loss/mine.yaml:3): expected float, got 'strong'",),
        tensorflow=True,  # named no file: the user never typed the value
        project=project(WITH_ALPHA, ("conf/loss/mine.yaml", "mine:\n  weight: 0.1\n  alpha: strong\n"))),
    Bad("project-option-key-of-an-empty-mapping", "misspelled key",  # said only "Unknown key loss.mine.scales.a"
        train("model=mlp", "data=regression", "loss=mine", "loss.mine.scales.a=1.0"),
        ("Unknown key loss.mine.scales.a: loss.mine.scales is an empty mapping, which a key is added to with '+' "
         "(+loss.mine.scales.a=1.0)",),
        project=project("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
                        "    def __init__(self, weight=0.1, scales: dict = None, **kwargs):\n"
                        "        super().__init__(weight=weight, **kwargs)\n\n"
                        "    def term(self, context):\n        return ops.mean(context.y_pred)\n",
                        ("conf/loss/mine.yaml", "mine:\n  weight: 0.1\n  scales: {}\n"))),
    Bad("project-required-option-without-a-yaml", "misspelled key",  # was "expected float, got '???'"
        train("model=mlp", "data=regression", "loss=mine"),
        ("Missing value for loss.mine.alpha: Mine (__init__ at ", "mine.py:7) has no default for alpha (set "
         "loss.mine.alpha=…)"), tensorflow=True,
        project=project("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
                        "    def __init__(self, alpha: float, weight=0.1, **kwargs):\n"
                        "        super().__init__(weight=weight, **kwargs)\n\n"
                        "    def term(self, context):\n        return ops.mean(context.y_pred)\n")),
    Bad("project-yaml-key-in-a-sweep-of-one-job", "misspelled key",  # a FAILED parent, exit 1: only sweeps of 2+ built
        sweep("model=mlp", "data=regression", "loss=mine"),
        ("Unknown key loss.mine.alpah (set in conf/loss/mine.yaml:3): valid keys are alpha, weight, kind",),
        tensorflow=True,
        project=project(WITH_ALPHA, ("conf/loss/mine.yaml", "mine:\n  weight: 0.1\n  alpah: 0.3\n"))),
    Bad("project-term-not-scalar", "error in the user's code", train("model=mlp", "data=regression", "loss=mine"),
        ("Invalid value for loss.mine: expected a term() that returns a scalar", "Mine.term at ", "mine.py:7)",
         "shape (8, 1)"), tensorflow=True,
        project=project("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
                        "    def term(self, context):\n        return context.y_pred\n")),
    Bad("project-term-not-finite", "error in the user's code", train("model=mlp", "data=regression", "loss=mine"),
        ("Invalid value for loss.mine: expected a finite term on the first examples (Mine.term at ", "mine.py:7)",
         "nan"), tensorflow=True,
        project=project("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
                        "    def term(self, context):\n        return ops.log(ops.mean(context.y_pred) * 0 - 1)\n")),
    Bad("project-term-none", "error in the user's code", train("model=mlp", "data=regression", "loss=mine"),
        ("Invalid value for loss.mine: expected a term() that returns a number", "Mine.term at ", "mine.py:7)",
         "got 'None'"), tensorflow=True,
        project=project("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
                        "    def term(self, context):\n        ops.mean(context.y_pred)\n")),
    Bad("project-term-integer", "error in the user's code", train("model=mlp", "data=regression", "loss=mine"),
        ("Invalid value for loss.mine: expected a term() that returns a float (an integer has no gradient",
         "Mine.term at ", "mine.py:7)", "got 'a tensor of dtype int32'"), tensorflow=True,
        project=project("@lossexp.register_component('mine')\nclass Mine(lossexp.LossComponent):\n"
                        "    def term(self, context):\n        return ops.cast(ops.mean(context.y_pred), 'int32')\n")),
    Bad("project-regime-build-not-keras", "error in the user's code", train("model=mine", "data=regression"),
        ("Invalid value for model: expected a keras.Model from the training regime's build() (Mine.build at ",
         "mine.py:12)", "got 'a builtins.str'"), tensorflow=True,
        project=project(REGIME.format(build="        return 'a model'\n", callbacks=""), MODEL_YAML)),
    Bad("project-regime-callbacks-raise", "error in the user's code", train("model=mine", "data=regression"),
        ("Your code failed making the training regime's callbacks at ", "mine.py:19 (in callbacks): "
         "RuntimeError: no callbacks"), tensorflow=True,
        project=project(REGIME.format(build="        inputs = keras.Input(data.input_shape)\n"
                                            "        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))\n"
                                            "        model.compile(optimizer='sgd', loss='mse')\n"
                                            "        return model\n",
                                      callbacks="    def callbacks(self, model, data):\n"
                                                "        raise RuntimeError('no callbacks')\n"), MODEL_YAML)),
    Bad("project-regime-inferred-task", "model incompatible with the data", train_on("model=mine", "data=labels"),
        ("Invalid value for data: expected regression data for model=mine (its training regime, Mine, trains no "
         "other; a data source declares its task: @lossexp.register_data(name, task=…)), got 'labels, "
         "classification data'",), tensorflow=True,
        project=project(REGIME.format(build="        return None\n", callbacks="")
                        + "\n\n@lossexp.register_data('labels')\ndef labels():\n    import numpy as np\n"
                          "    return np.zeros((20, 2), 'float32'), np.arange(20) % 2\n",
                        MODEL_YAML, ("conf/data/labels.yaml", "name: labels\n"))),
    Bad("project-name-clash", "name taken by lossexp", train("model=mlp", "data=regression"),
        ("Invalid model name 'mlp' (project", "lossexp ships a model of that name; choose another"), tensorflow=True,
        project=project(DENSE.replace("'mine'", "'mlp'"))),
    Bad("project-yaml-clash", "name taken by lossexp", train("model=mlp", "data=regression"),
        ("Invalid file", "conf/model/mlp.yaml", "lossexp ships model=mlp; give yours another name"),
        project=(("conf/model/mlp.yaml", "name: mlp\n"),)),
    Bad("project-component-option-type", "wrong type", train("model=mlp", "data=regression", "loss=mine",
                                                             "loss.mine.norm=l3"),
        ("Invalid value for loss.mine.norm: expected one of 'l1', 'l2', got 'l3'",),
        project=project("from typing import Literal\n\n\n@lossexp.register_component('mine')\n"
                        "class Mine(lossexp.LossComponent):\n"
                        "    def __init__(self, weight=0.1, norm: Literal['l1', 'l2'] = 'l2', **kwargs):\n"
                        "        super().__init__(weight=weight, **kwargs)\n        self.norm = norm\n\n"
                        "    def term(self, context):\n        return ops.mean(context.y_pred)\n")),
    Bad("project-yaml-syntax-error", "error in the user's code", train("model=broken", "data=regression"),
        ("Invalid YAML in conf/model/broken.yaml, line 3: expected ',' or ']', but got ':'",),
        project=project("", ("conf/model/broken.yaml", "name: mlp\nhidden_units: [16\nfoo: 1\n"))),
    Bad("project-yaml-without-code", "unknown model", train("model=ghost", "data=regression"),
        ("Unknown model 'ghost'", "conf/model/ghost.yaml selects it, but no module of the project registers it",
         "valid choices are applications, cnn, gan, keras_file, mlp, point, vae"), tensorflow=True,
        project=project("", ("conf/model/ghost.yaml", "name: ghost\n"))),
    Bad("project-data-raises", "error in the user's code", train_on("model=mlp", "data=mine"),
        ("Invalid value for data.path: expected an existing file or directory, got 'gone.npy' (loading data 'mine' "
         "failed at", "mine.py:7", "FileNotFoundError"), tensorflow=True,
        project=project("@lossexp.register_data('mine')\ndef mine(path: str = 'gone.npy'):\n"
                        "    return open(path).read()\n", ("conf/data/mine.yaml", "name: mine\npath: gone.npy\n"))),
    Bad("data-file-missing", "a data file that is missing or unreadable", train_on("model=mlp", "data=npz",
                                                                                  "data.path=nope.npz"),
        ("Invalid value for data.path: expected an existing file (.npz), got 'nope.npz'",), tensorflow=True),
    Bad("data-npz-missing-key", "a data file that is missing or unreadable",
        train_on("model=mlp", "data=npz", "data.path=arrays.npz", "data.y=label"),
        ("Invalid value for data.y: arrays.npz has no array 'label'; its arrays are x, y",), tensorflow=True),
    Bad("data-npz-lengths", "a data file that is missing or unreadable",  # was an IndexError in lossexp's shuffle
        train_on("model=mlp", "data=npz", "data.path=short_y.npz"),
        ("Invalid value for data.y: expected as many rows as array 'x' (40), got 35 rows in array 'y' of short_y.npz",),
        tensorflow=True),
    Bad("data-nan", "NaN/inf in the data", train_on("model=mlp", "data=npz", "data.path=nan.npz"),
        ("Invalid value for data (npz): expected finite array 'x' of nan.npz", "NaN/inf in array 'x' of nan.npz at "
         "example 3"), tensorflow=True),
    Bad("data-csv-missing-column", "a data file that is missing or unreadable",
        train_on("model=mlp", "data=csv", "data.path=table.csv", "data.target=price"),
        ("Invalid value for data.target: table.csv has no column 'price'; its columns are a, b, y",), tensorflow=True),
    Bad("data-target-required", "a data file that is missing or unreadable",
        train_on("model=mlp", "data=csv", "data.path=table.csv"),
        ("Missing value for data.target: data=csv requires it",)),
    Bad("tracking-server-wants-credentials", "tracking server refuses the credentials",
        train("tracking.uri=http://127.0.0.1:{auth_port}"),
        ("tracking.uri", "'http://127.0.0.1:{auth_port}'", "HTTP 401 Unauthorized",
         "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"), max_seconds=10),
    Bad("runs-server-unreachable", "unreachable tracking server", ("runs", "--uri", "http://127.0.0.1:{closed_port}"),
        ("--uri", "'http://127.0.0.1:{closed_port}'", "a reachable MLflow tracking server", "Connection refused"),
        max_seconds=10),
    Bad("runs-store-mlflow-cannot-open", "unusable tracking store", ("runs", "--uri", "mlruns"),
        ("--uri", "a tracking store MLflow can open", "'mlruns'", "filesystem tracking backend")),
    # --- a replayed config is data (--from-run, the config.yaml beside a model) ------------------
    Bad("from-run-without-id", "--from-run", ("train", "--from-run"),
        ("Invalid value for --from-run", "expected a run id, got nothing")),
    Bad("from-run-unknown-run", "--from-run", ("train", "--from-run", "0123abcd"),
        ("Unknown run '0123abcd' for --from-run", "no such run in sqlite:///{tmp}/outputs/mlflow.db")),
    Bad("from-run-interpolation", "replayed config (data)", ("train", "--from-run", "{crafted_run}"),
        ("Invalid value for tracking.run_name in the config.yaml of run '{crafted_run}'",
         "a replayed config is data: no ${…} interpolation is resolved", "'${oc.env:SECRET_TOKEN}'"),
        setup="interpolated-run-name"),
    Bad("from-run-unknown-section", "replayed config (data)", ("train", "--from-run", "{crafted_run}"),
        ("Unknown key shell in the config.yaml of run '{crafted_run}'",
         "valid keys are ablation, data, loss, model, objective, optimizer, task, tracking, trainer, weighting"),
        setup="unknown-section"),
    Bad("from-run-misspelled-override", "--from-run", ("train", "--from-run", "{crafted_run}", "trainer.epoch=3"),
        ("Unknown key trainer.epoch: valid keys are batch_size, checkpoint", "(an override of --from-run)"),
        setup="logged-run"),  # was Hydra's "Could not override 'trainer.epoch'", no valid keys
    Bad("from-run-sweep-misspelled-override", "--from-run", ("train", "--from-run", "{crafted_run}", "-m",
                                                             "trainer.epoch=3,4"),
        ("Unknown key trainer.epoch: valid keys are batch_size, checkpoint",),
        setup="logged-run"),  # was Hydra's "Could not override 'trainer.epoch'" and a pointer at a stack trace
    Bad("from-run-store-uri-sweep", "--from-run", ("train", "--from-run", "0123abcd", "tracking.uri=a,b"),
        ("Invalid value for tracking.uri", "a tracking URI (one, not a sweep)", "'a,b'")),
    Bad("evaluate-config-interpolation", "replayed config (data)", ("evaluate", "crafted/model.keras"),
        ("Invalid value for data.name in 'crafted/config.yaml' (the config of the run that saved model.keras)",
         "no ${…} interpolation is resolved", "'${oc.env:HOME}'")),
    # --- found by fuzzing (tests/test_fuzzed_input.py) --------------------------------------------
    Bad("override-without-key", "found by fuzzing", train("=0"),
        ("Invalid override in", "=0'", "Config group override must be a string or a list")),
    Bad("weight-beyond-float-range", "found by fuzzing", train("loss.hist_avg.weight=1" + "0" * 310),
        ("loss.hist_avg.weight", "a finite number >= 0.0", "got 1000")),
    Bad("control-character-in-argument", "found by fuzzing", ("runs", "--experiment", "lossexp", "a\rb"),
        ("lossexp runs: unrecognized arguments: a\\rb",)),
    # --- sweeps (-m) ----------------------------------------------------------------------------
    Bad("sweep-unknown-model", "multirun", sweep("model=mlp,cnnn"),
        ("Unknown model 'cnnn'", "applications, cnn, gan, keras_file, mlp, point, vae", "in sweep job", "model=cnnn")),
    Bad("sweep-epochs-0", "multirun", sweep("trainer.epochs=1,0"),
        ("trainer.epochs", "an integer >= 1", "got 0", "in sweep job")),
    Bad("sweep-option-of-absent-component", "multirun", sweep("loss=activity,coef", "loss.activity.weight=0.1"),
        ("Unknown key loss.activity", "valid keys are coef")),
    Bad("sweep-output-dir-in-proc", "multirun", sweep("model=mlp,cnn", "hydra.sweep.dir=/proc/lossexp"),
        ("hydra.sweep.dir", "'/proc/lossexp'", "a directory lossexp can create and write")),
    Bad("sweep-cfg-and-multirun", "multirun", ("train", "--cfg", "job", "-m", "model=mlp,cnn"),
        ("--multirun and --cfg cannot be combined", "--run, --multirun, --cfg, --info")),
    Bad("sweep-second-job-bad-layer", "multirun",
        sweep("model=mlp", "data=regression", "loss=activity", "loss.activity.layers=[hidden_1],[dense_9]"),
        ("loss.activity.layers", "'dense_9'", "inputs, hidden_1, hidden_2, output", "in sweep job"),
        tensorflow=True),
    # --- Optuna sweeps (hparams_search=…) -------------------------------------------------------
    Bad("optuna-unknown-sampler", "unknown sampler or pruner", sweep(*OPTUNA, "hydra.sweeper.sampler=bayes"),
        ("Unknown hydra.sweeper.sampler 'bayes'", "cmaes, gp, grid, nsgaii, random, tpe")),
    Bad("optuna-unknown-pruner", "unknown sampler or pruner", sweep(*OPTUNA, "hydra.sweeper.pruner=medain"),
        ("Unknown hydra.sweeper.pruner 'medain'", "hyperband, median, none, percentile, successive_halving")),
    Bad("optuna-unknown-pruner-option", "unknown sampler or pruner",
        sweep(*OPTUNA, "hydra.sweeper.pruner=median", "+hydra.sweeper.pruner_options.percentile=5"),
        ("Unknown key hydra.sweeper.pruner_options.percentile", "hydra.sweeper.pruner=median",
         "interval_steps, n_min_trials, n_startup_trials, n_warmup_steps")),
    Bad("optuna-search-key-missing", "search-space key or range",
        sweep(*OPTUNA, "loss.activity.wieght=interval(0.1,1)"),
        ("Unknown key loss.activity.wieght in hydra.sweeper.params", "loss.activity.layers", "loss.activity.weight")),
    Bad("optuna-log-range-from-0", "search-space key or range",
        sweep(*OPTUNA, "loss.activity.weight=tag(log,interval(0,0.1))"),
        ("Invalid value for hydra.sweeper.params.loss.activity.weight", "with 0 < low", "'tag(log,interval(0,0.1))'")),
    Bad("optuna-range-reversed", "search-space key or range", sweep(*OPTUNA, "loss.activity.weight=interval(0.1,0.01)"),
        ("Invalid value for hydra.sweeper.params.loss.activity.weight", "low < high", "'interval(0.1,0.01)'")),
    Bad("optuna-range-outside-valid-values", "search-space key or range",
        sweep(*OPTUNA, "loss.activity.weight=interval(-1,1)"),
        ("Invalid value for loss.activity.weight", ">= 0.0", "got -1.0", "at an end of hydra.sweeper.params")),
    Bad("optuna-range-outside-a-components-option", "search-space key or range",  # a trial mid-sweep failed, exit 1
        sweep(*OPTUNA, "loss.hist_avg.mode=ema", "loss.hist_avg.decay=interval(0.5,1.5)"),
        ("Invalid value for loss.hist_avg.decay", "got 1.5", "(at an end of hydra.sweeper.params: ",
         "loss.hist_avg.decay=1.5)"), tensorflow=True),
    Bad("optuna-grid-over-interval", "search-space key or range", sweep(*OPTUNA, "hydra.sweeper.sampler=grid"),
        ("hydra.sweeper.params.loss.hist_avg.weight", "choice(…) or range(…) for hydra.sweeper.sampler=grid")),
    Bad("optuna-second-objective-not-recorded", "objective the run never records",
        sweep(*OPTUNA, "objective.metrics=[val_loss,loss/activty]"),
        ("Invalid value for objective.metrics", "'loss/activty' is not recorded", "loss/activity, loss/hist_avg"),
        tensorflow=True),
    Bad("single-run-objective-not-recorded", "objective the run never records",  # failed the run after training
        train("objective.metric=val_los"),
        ("Invalid value for objective.metric: 'val_los' is not recorded by this run; valid choices are accuracy, loss",),
        tensorflow=True),
    Bad("early-stopping-monitor-not-recorded", "objective the run never records",  # a FAILED run after an epoch
        train("trainer.patience=1", "trainer.monitor=val_acc"),
        ("Invalid value for trainer.monitor: expected a metric the run records at each epoch's end: accuracy, ",
         "val_accuracy, val_loss", "got 'val_acc'"),
        tensorflow=True),
    Bad("sweep-second-job-monitor-not-recorded", "objective the run never records",  # its first job trained first
        sweep("model=mlp", "data=regression", "trainer.monitor=val_loss,val_acuracy", "trainer.patience=2"),
        ("Invalid value for trainer.monitor", "got 'val_acuracy' (in sweep job: ", "trainer.monitor=val_acuracy"),
        tensorflow=True),
    Bad("optuna-pruning-several-objectives", "objective the run never records",
        sweep(*OPTUNA, "objective.metrics=[val_loss,loss/activity]", "hydra.sweeper.pruner=median"),
        ("Invalid value for hydra.sweeper.pruner", "expected none with several objectives", "'median'")),
    Bad("optuna-study-other-directions", "study with other directions",
        sweep(*OPTUNA, "hydra.sweeper.storage=sqlite:///{tmp}/studies.sqlite", "hydra.sweeper.study_name=weights",
              "objective.direction=maximize"),
        ("Invalid value for hydra.sweeper.study_name", "study 'weights'", "optimises minimize",
         "objective.directions are maximize")),
    # --- lossexp ablate ---------------------------------------------------------------------------
    Bad("ablate-one-component", "ablation", ("ablate", "--seeds", "2", "loss=activity", *QUICK),
        ("Invalid value for loss", "at least 2 components to ablate", "got 1 (activity)")),
    Bad("ablate-no-seeds", "ablation", ("ablate", "--seeds", "0", "loss=hist_avg+activity"),
        ("Invalid value for --seeds", "a whole number >= 1", "got 0")),
    Bad("ablate-seed-swept", "ablation", ("ablate", "loss=hist_avg+activity", "trainer.seed=1"),
        ("lossexp ablate", "trainer.seed=1", "sweeps trainer.seed itself", "--seeds N")),
    # --- resuming a sweep or an ablation (lossexp train -m … --resume PARENT_ID, lossexp ablate --resume) ----
    Bad("resume-sweep-other-grid", "resuming a sweep", sweep("loss.activity.weight=0.01,0.1,1.0", "--resume", "{parent}"),
        ("Invalid value for --resume", "the sweep its parent ran", "only tracking.uri may differ",
         "it ran loss.activity.weight=0.01,0.1, this command asks for loss.activity.weight=0.01,0.1,1.0"),
        setup="stopped-sweep"),
    Bad("resume-sweep-other-config-grid", "resuming a sweep", sweep("+grid=small", "--resume", "{parent}"),
        ("Invalid value for --resume", "it ran loss.activity.weight=0.01,0.1 (in hydra.sweeper.params), this command "
         "asks for loss.activity.weight=0.01,0.1,1.0 (in hydra.sweeper.params)"),
        project=(("pyproject.toml", "[tool.lossexp]\n"), ("conf/grid/small.yaml", "# @package _global_\nhydra:\n  "
                 "sweeper:\n    params:\n      loss.activity.weight: 0.01,0.1,1.0\n")), setup="stopped-config-grid"),
    Bad("resume-sweep-still-running", "resuming a sweep", sweep("--resume", "{parent}"),
        ("Invalid value for --resume", "a sweep that stopped", "still running (process {holder}, heartbeat"),
        setup="live-sweep"),
    Bad("resume-sweep-finished", "resuming a sweep", sweep("--resume", "{parent}"),
        ("Invalid value for --resume", "a sweep that stopped (KILLED or FAILED)", "FINISHED: every job finished"),
        setup="finished-sweep"),
    Bad("resume-sweep-optuna", "resuming a sweep", sweep("--resume", "{parent}"),
        ("Invalid value for --resume", "the parent of a grid sweep",
         "an Optuna study continues with hydra.sweeper.study_name=weights"), setup="optuna-sweep"),
    Bad("resume-sweep-child-id", "resuming a sweep", sweep("--resume", "{child}"),
        ("Invalid value for --resume", "a sweep's parent run with -m", "{child}, a job of sweep {parent} (give the "
         "parent's id)"), setup="stopped-sweep"),
    Bad("resume-sweep-recorded-before", "resuming a sweep", sweep("--resume", "{parent}"),
        ("Invalid value for --resume", "a sweep recorded with its jobs' overrides (tag sweep.task_overrides)",
         "recorded before lossexp could continue a sweep"), setup="sweep-recorded-before"),
    Bad("resume-sweep-without-multirun", "resuming a sweep", train("--resume", "{parent}"),
        ("Invalid value for --resume", "a run, or with -m a sweep's parent run", "a sweep's parent: continue the "
         "sweep with lossexp train -m", "--resume {parent}"), setup="stopped-sweep"),
    Bad("resume-retry-failed-without-resume", "resuming a sweep", sweep("--retry-failed"),
        ("--retry-failed runs a sweep's failed jobs again as it continues", "give it with -m … --resume PARENT_ID")),
    Bad("resume-ablation-with-train", "resuming a sweep", sweep("--resume", "{parent}"),
        ("Invalid value for --resume", "a sweep of lossexp train -m", "an ablation (lossexp ablate): continue it "
         "with lossexp ablate --seeds 2 loss=hist_avg+activity --resume {parent}"), setup="stopped-ablation"),
    Bad("resume-ablate-other-sweep", "resuming a sweep", ("ablate", "loss=hist_avg+activity", *QUICK, "--resume",
                                                          "{parent}"),
        ("Invalid value for --resume", "an ablation's parent run (lossexp ablate)", "a sweep of lossexp train -m: "
         "continue it with lossexp train -m"), setup="stopped-sweep"),
    Bad("resume-ablate-retry-failed-without-resume", "resuming a sweep",
        ("ablate", "loss=hist_avg+activity", "--retry-failed"),
        ("--retry-failed runs an ablation's failed jobs again as it continues", "give it with --resume PARENT_ID")),
    # --- lossexp evaluate MODEL.keras -----------------------------------------------------------
    Bad("evaluate-flag-not-an-override", "corrupt/old .keras", ("evaluate", "nope.keras", "--uri", "x"),
        ("Unknown option --uri for lossexp evaluate: it takes MODEL, then overrides (lossexp evaluate MODEL "
         "[overrides]; the store is tracking.uri=URI)",)),  # was "Invalid override '--uri': a quote is not closed"
    Bad("evaluate-missing-file", "corrupt/old .keras", ("evaluate", "nope.keras"),
        ("Invalid value for MODEL", "'nope.keras'", "a .keras file saved by lossexp train", "no such file")),
    Bad("evaluate-corrupt-file", "corrupt/old .keras", ("evaluate", "corrupt.keras"),
        ("Invalid value for MODEL", "'corrupt.keras'", "a .keras file saved by lossexp train", "not a readable zip")),
    Bad("evaluate-zip-without-config", "corrupt/old .keras", ("evaluate", "no_config.keras"),
        ("Invalid value for MODEL", "got 'no_config.keras' (no config.json", "not a Keras 3 model file")),
    Bad("evaluate-keras-2-file", "corrupt/old .keras", ("evaluate", "keras2.keras"),
        ("'keras2.keras'", "saved by Keras 2.15.0", "Keras 3")),
    Bad("evaluate-foreign-model", "corrupt/old .keras", ("evaluate", "foreign.keras"),
        ("'foreign.keras'", "not a lossexp model", "lossexp>ComposedModel")),
    Bad("evaluate-no-model", "corrupt/old .keras", ("evaluate", "data=digits"),
        ("Invalid value for MODEL", "a .keras file, model directory or URI first", "'data=digits'")),
    Bad("evaluate-uri-without-store", "corrupt/old .keras",
        ("evaluate", "runs:/0123456789abcdef0123456789abcdef/model"),
        ("Invalid value for MODEL", "'runs:/0123456789abcdef0123456789abcdef/model'", "runs:/ or models:/ URI",
         "no store at")),
    Bad("evaluate-directory-without-model", "corrupt/old .keras", ("evaluate", "."),
        ("Invalid value for MODEL", "got '.'", "a directory with neither MLmodel nor model.keras")),
]


def _zip(entries: Dict[str, object]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in entries.items():
                archive.writestr(name, content if isinstance(content, (bytes, str)) else json.dumps(content))

    return write


def _npz(path: Path, nan_at: int = -1, targets: int = 40) -> None:
    import numpy as np

    x = np.random.default_rng(0).random((40, 4)).astype("float32")
    if nan_at >= 0:
        x[nan_at, 0] = np.nan
    with open(path, "wb") as handle:  # np.savez on a path would add .npz
        np.savez(handle, x=x, y=x.sum(axis=1)[:targets])


#: bad model files the evaluate rows name, written into the working directory
FILES: Dict[str, Callable[[Path], None]] = {
    "corrupt.keras": lambda path: path.write_bytes(b"PK\x03\x04 this is not what it claims to be"),
    "no_config.keras": _zip({"model.weights.h5": b""}),
    "keras2.keras": _zip({"metadata.json": {"keras_version": "2.15.0"},
                          "config.json": {"class_name": "Sequential", "config": {}}}),
    "foreign.keras": _zip({"metadata.json": {"keras_version": "3.15.1"},
                           "config.json": {"class_name": "Sequential", "registered_name": None, "config": {}}}),
    "a_file": lambda path: path.write_text("a file, not a directory\n"),
    "arrays.npz": lambda path: _npz(path),
    "nan.npz": lambda path: _npz(path, nan_at=3),
    "short_y.npz": lambda path: _npz(path, targets=35),
    "table.csv": lambda path: path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.5}\n" for i in range(40))),
    "studies.sqlite": lambda path: _study(path, "weights", "minimize"),
    "crafted": lambda path: _model_with_config(path, "data:\n  name: ${oc.env:HOME}\n"),
}


def _model_with_config(directory: Path, config_text: str) -> None:
    """``directory/model.keras`` (an archive that claims to be lossexp's) with ``config.yaml`` beside it."""
    directory.mkdir()
    _zip({"metadata.json": {"keras_version": "3.15.1"},
          "config.json": {"class_name": "ComposedModel", "registered_name": "lossexp>ComposedModel"}})(
        directory / "model.keras")
    (directory / "config.yaml").write_text(config_text)


def _crafted_run(edit: Callable[[dict], None]) -> Callable[[Path], Dict[str, str]]:
    """A setup: a run in the working directory's default store whose config.yaml is lossexp's, edited."""
    def setup(workdir: Path) -> Dict[str, str]:
        from crafted_runs import composed_config, crafted_run, dump

        config = composed_config()
        edit(config)
        return {"crafted_run": crafted_run(f"sqlite:///{workdir / 'outputs' / 'mlflow.db'}", dump(config))}

    return setup


def _crafted_sweep(status: str, task_overrides: Optional[Tuple[str, ...]] = (*QUICK, "loss.activity.weight=0.01,0.1"),
                   live: bool = False, **tags: str) -> Callable[[Path], Dict[str, str]]:
    """A setup: a grid sweep's parent ended ``status`` in the working directory's default store, with a
    KILLED child (``{parent}``, ``{child}``); ``live``: held by this process, its heartbeat fresh (``{holder}``)."""
    def setup(workdir: Path) -> Dict[str, str]:
        import os

        from crafted_runs import crafted_child, crafted_sweep

        uri = f"sqlite:///{workdir / 'outputs' / 'mlflow.db'}"
        holder = f"{socket.gethostname()}:{os.getpid()}"
        held = {"lossexp.heartbeat": f"{time.time():.3f}", "lossexp.process": holder} if live else {}
        parent = crafted_sweep(uri, status, task_overrides, **held, **tags)
        child = crafted_child(uri, parent, "KILLED", [*QUICK, "loss.activity.weight=0.01"])
        return {"parent": parent, "child": child, **({"holder": holder} if live else {})}

    return setup


#: what a row's working directory holds before its command runs: {placeholder: value}
SETUPS: Dict[str, Callable[[Path], Dict[str, str]]] = {
    "interpolated-run-name": _crafted_run(lambda config: config["tracking"].update(
        run_name="${oc.env:SECRET_TOKEN}", uri="http://127.0.0.1:9")),
    "unknown-section": _crafted_run(lambda config: config.update(shell="rm -rf ~")),
    "logged-run": _crafted_run(lambda config: None),
    "stopped-sweep": _crafted_sweep("KILLED"),
    "stopped-config-grid": _crafted_sweep("KILLED", (*QUICK, "+grid=small"),
                                          **{"sweep.params": json.dumps(["loss.activity.weight=0.01,0.1"])}),
    "live-sweep": _crafted_sweep("RUNNING", live=True),
    "finished-sweep": _crafted_sweep("FINISHED"),
    "optuna-sweep": _crafted_sweep("KILLED", **{"sweep.sweeper": "OptunaSweeper", "optuna.study": "weights"}),
    "sweep-recorded-before": _crafted_sweep("FAILED", None),
    "stopped-ablation": _crafted_sweep("KILLED", ("loss=[hist_avg,activity]", "ablation.leave_out=null,hist_avg,activity",
                                                  "trainer.seed=0,1"), **{"ablation.request": json.dumps(
                                                      {"seeds": 2, "overrides": ["loss=hist_avg+activity"]})}),
}


def _study(path: Path, name: str, direction: str) -> None:
    """An Optuna study in a SQLite file (``.sqlite``, so no MLflow store check opens it)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(storage=f"sqlite:///{path}", study_name=name, direction=direction)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def http_port(tmp_path_factory) -> Iterator[int]:
    """A plain web server on 127.0.0.1 (404 for /health), standing in for a wrong tracking URI."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    with local_http_server(functools.partial(Quiet, directory=str(tmp_path_factory.mktemp("www")))) as server:
        yield server.server_address[1]


class _WantsCredentials(http.server.BaseHTTPRequestHandler):
    """``/health`` for anyone, 401 for the rest: MLflow's basic-auth server to a client without a login."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/health" else 401)
        self.end_headers()
        self.wfile.write(b"OK" if self.path == "/health" else b"You are not authenticated.")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def auth_port() -> Iterator[int]:
    with local_http_server(_WantsCredentials) as server:
        yield server.server_address[1]


def fill(text: str, values: Dict[str, object]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def run_row(row: Bad, workdir: Path, values: Dict[str, object]) -> Tuple[subprocess.CompletedProcess, float]:
    """Run the row's command in ``workdir`` (with its bad files); (result, elapsed seconds). A row found
    once TensorFlow has loaded runs in a child of the warm process (tests/warm_cli.py), the others in a
    child of the light one, which has not imported TensorFlow: it shows that they never import it."""
    for name, write in FILES.items():
        if any(name in arg for arg in row.args):  # the files this row names
            write(workdir / name)
    for relative, text in row.project:
        (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
        (workdir / relative).write_text(text)
    args = [fill(arg, values) for arg in row.args]
    start = time.monotonic()
    result = cli(workdir, *args, light=not row.tensorflow)
    return result, time.monotonic() - start


def message_lines(stderr: str) -> List[str]:
    """stderr without TensorFlow's start-up lines."""
    return [line for line in stderr.splitlines() if line.strip() and not _TF_NOISE.match(line)]


def runs_in_stores(workdir: Path) -> List[Tuple[str, str, str]]:
    """(store, run id, run status) of every run in every SQLite store under ``workdir``."""
    from mlflow.tracking import MlflowClient

    found = []
    for database in workdir.rglob("*.db"):
        client = MlflowClient(f"sqlite:///{database}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(experiments) if experiments else []
        found += [(str(database), run.info.run_id, run.info.status) for run in runs]
    return sorted(found)


@pytest.mark.parametrize("row", BAD_INPUTS, ids=[row.id for row in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_nothing_recorded(row: Bad, tmp_path: Path, http_port: int,
                                                           auth_port: int) -> None:
    values = {"tmp": tmp_path, "closed_port": closed_port(), "http_port": http_port, "auth_port": auth_port}
    values.update(SETUPS[row.setup](tmp_path) if row.setup else {})
    before = runs_in_stores(tmp_path)  # the runs the setup made (someone else's)
    result, elapsed = run_row(row, tmp_path, values)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = message_lines(result.stderr) if row.tensorflow else result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossexp: error: "), result.stderr[-3000:]
    assert lines[0].count("Invalid value for") <= 1, "one error wrapped in another"
    for piece in row.expect:
        assert fill(piece, values) in lines[0]
    if not row.tensorflow:
        assert "tensorflow" not in result.stderr.lower() and not _TF_NOISE.search(result.stderr)
        if not row.project:  # a project's module imports Keras itself
            assert "tensorflow" not in result.heavy_imports, "imported TensorFlow before refusing"
    if row.max_seconds:
        assert elapsed < row.max_seconds, f"took {elapsed:.1f} s"
    assert runs_in_stores(tmp_path) == before


def test_the_table_covers_the_issue() -> None:
    """At least 30 rows; every category of the issue's list has one; ids are unique."""
    categories = {row.what for row in BAD_INPUTS}
    wanted = {"unknown model", "unknown data", "unknown component", "unknown optimizer", "misspelled key",
              "wrong type", "negative or NaN weight", "schedule with bad bounds", "layer name not in the model",
              "component incompatible with the model", "hist_avg.decay outside (0, 1)", "epochs or batch size 0",
              "validation split outside [0, 1)", "loss=+", "loss=a++b", "duplicate component",
              "unknown parametrization", "unreachable tracking server", "unwritable output directory",
              "corrupt/old .keras", "multirun", "unknown sampler or pruner", "search-space key or range",
              "objective the run never records", "study with other directions",
              "tracking server refuses the credentials", "--from-run", "replayed config (data)", "found by fuzzing",
              "error in the user's code", "name taken by lossexp", "a data file that is missing or unreadable",
              "NaN/inf in the data", "model incompatible with the data"}
    assert wanted <= categories, wanted - categories
    assert len(BAD_INPUTS) >= 30 and len({row.id for row in BAD_INPUTS}) == len(BAD_INPUTS)
