"""Typed schemas for the composed config, so a typo or a wrong type fails before anything runs.

Hydra composes plain YAML from ``conf/``; :func:`validate` then merges every section into its
dataclass schema (the model and data sections by their ``name``) and checks value ranges. Loss
components are validated by their own constructors (see ``lossexp.losses.base``), because their
options are their constructor arguments. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossexp import CONF_DIR
from lossexp.errors import ConfigError, invalid_value, unknown_name
from lossexp.losses.registry import KIND_KEY, PLAYER_KEY, available
from lossexp.losses.weight_spec import parse_weight


# --- models -------------------------------------------------------------------------------
@dataclass
class MLPConfig:
    """Dense stack: ``hidden_1 … hidden_n`` then ``output``."""

    name: str = "mlp"
    hidden_units: List[int] = field(default_factory=lambda: [64, 32])
    activation: str = "relu"
    #: null: softmax for classification, linear for regression; softplus/exp keep ŷ > 0
    output_activation: Optional[str] = None


@dataclass
class CNNConfig:
    """``conv_i``/``pool_i`` blocks, ``flatten``, ``hidden_1``, ``output``."""

    name: str = "cnn"
    filters: List[int] = field(default_factory=lambda: [16, 32])
    kernel_size: int = 3
    dense_units: int = 64
    activation: str = "relu"


@dataclass
class VAEConfig:
    """Dense VAE: ``encoder_hidden_i``, ``z_mean``, ``z_log_var``, ``z``, ``decoder_hidden_i``, ``output``."""

    name: str = "vae"
    encoder_units: List[int] = field(default_factory=lambda: [64, 32])
    latent_dim: int = 8
    decoder_units: List[int] = field(default_factory=lambda: [32, 64])
    activation: str = "relu"
    #: seed of the sampling noise; None: drawn from Keras' global seed (set from trainer.seed)
    seed: Optional[int] = None


@dataclass
class GANConfig:
    """Two Dense stacks: generator ``latent → hidden_1 … hidden_n → output`` (a 2-D point) and
    discriminator ``point → hidden_1 … hidden_n → output`` (a logit). Trained on ``data=ring``."""

    name: str = "gan"
    latent_dim: int = 16
    generator_units: List[int] = field(default_factory=lambda: [128, 128])
    discriminator_units: List[int] = field(default_factory=lambda: [128, 128])
    activation: str = "relu"


MODEL_SCHEMAS: Dict[str, type] = {"mlp": MLPConfig, "cnn": CNNConfig, "vae": VAEConfig, "gan": GANConfig}


# --- data sets ----------------------------------------------------------------------------
@dataclass
class DigitsConfig:
    """scikit-learn's bundled 8×8 digits (1,797 images, 10 classes); no download."""

    name: str = "digits"
    seed: int = 0
    n_samples: Optional[int] = None


@dataclass
class RegressionConfig:
    """R0's synthetic target ``x0*x1 + 2*x1² + x2/x3 + 3*x3`` on ``U(0,1)⁴`` inputs."""

    name: str = "regression"
    seed: int = 0
    n_samples: int = 1000
    task_loss: str = "mean_squared_error"


@dataclass
class UniformConfig:
    """R1's fake data: U(0,1) inputs and U(0,1) targets drawn independently (nothing to learn)."""

    name: str = "uniform"
    seed: int = 0
    n_samples: int = 1000
    n_features: int = 32
    n_targets: int = 2
    task_loss: str = "mean_squared_error"


@dataclass
class PositiveConfig:
    """R4's positive targets: log y = x0 − x1 + 0.5·x2·x3 + noise·ε on U(0,1)⁴ inputs."""

    name: str = "positive"
    seed: int = 0
    n_samples: int = 1000
    noise: float = 0.1
    task_loss: str = "mean_squared_error"


@dataclass
class RingConfig:
    """8 Gaussians on a circle (VEEGAN's ring), for ``model=gan``; generated from a seed."""

    name: str = "ring"
    seed: int = 0
    n_samples: int = 10000
    radius: float = 2.0
    std: float = 0.02


DATA_SCHEMAS: Dict[str, type] = {"digits": DigitsConfig, "regression": RegressionConfig, "uniform": UniformConfig,
                                 "positive": PositiveConfig, "ring": RingConfig}
#: Data sets that only one model can use, and models that need one data set: {model: data}.
PAIRED = {"gan": "ring"}
#: ``data.task_loss`` choices for regression data (``squared_log_error``: mean (log y − log ŷ)²)
REGRESSION_LOSSES = ("mean_squared_error", "mean_absolute_error", "squared_log_error")
#: output activations that keep ŷ > 0, as ``squared_log_error`` needs
POSITIVE_OUTPUTS = ("softplus", "exp")


# --- training, optimiser, tracking --------------------------------------------------------
@dataclass
class OptimizerConfig:
    name: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0  # sgd only


OPTIMIZERS = ("adam", "sgd")


@dataclass
class TrainerConfig:
    epochs: int = 5
    batch_size: int = 32
    validation_split: float = 0.2
    seed: int = 0
    log_every_n_steps: int = 10
    #: training steps per call into the compiled step; null: ``log_every_n_steps``, so Python
    #: (callbacks, tracking) runs once per logging interval instead of once per step
    steps_per_execution: Optional[int] = None
    verbose: int = 2
    #: stop when a raw/uncertainty weight diverges (it is always reported and tagged)
    stop_on_divergence: bool = False

    @property
    def execution_steps(self) -> int:
        """Steps per compiled call: ``steps_per_execution``, else one logging interval."""
        return self.steps_per_execution or self.log_every_n_steps


@dataclass
class TrackingConfig:
    enabled: bool = True
    #: MLflow tracking URI; empty means ``$MLFLOW_TRACKING_URI`` or ``outputs/mlflow.db``.
    uri: Optional[str] = None
    experiment: str = "lossexp"
    run_name: Optional[str] = None
    drift: bool = True
    plots: bool = True
    log_model: bool = True
    #: MLflow's system metrics (CPU, memory, disk, network; GPU when present) as ``system/…``
    system_metrics: bool = False
    #: seconds between heartbeats of a running run (tag ``lossexp.heartbeat``)
    heartbeat_s: float = 30.0
    #: a RUNNING run silent this long is marked FAILED at the start of the next run
    stale_after_s: float = 300.0
    #: set by the sweep callback (lossexp.sweeps) for each job of a multirun: its parent run
    parent_run_id: Optional[str] = None
    #: set by the sweep callback: the keys the sweep varies (they name the child runs)
    sweep_keys: List[str] = field(default_factory=list)


@dataclass
class ObjectiveConfig:
    """What a job returns to a sweeper (Optuna): the final value of ``metric``, to ``direction``."""

    metric: str = "val_loss"
    direction: str = "minimize"


DIRECTIONS = ("minimize", "maximize")


@dataclass
class LossexpConfig:
    """The whole validated config, as the runner reads it."""

    model: Any
    data: Any
    loss: Dict[str, Any]
    optimizer: OptimizerConfig
    trainer: TrainerConfig
    tracking: TrackingConfig
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)


def _merge(section: str, schema: type, node: Any) -> Any:
    """Merge ``node`` into ``schema``; turn OmegaConf's multi-line errors into one line."""
    valid = ", ".join(f.name for f in fields(schema))
    if not isinstance(node, (DictConfig, dict)):
        raise invalid_value(section, f"a mapping with keys {valid}", node)
    base = OmegaConf.structured(schema)
    try:
        merged = OmegaConf.merge(base, node)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or ""
        leaf = str(key).split(".")[-1]
        full = f"{section}.{leaf}" if leaf else section
        if leaf and leaf not in {f.name for f in fields(schema)}:
            raise ConfigError(f"Unknown key {full}: valid keys are {valid}") from None
        expected = next((str(f.type) for f in fields(schema) if f.name == leaf), "a valid value")
        got = node.get(leaf) if leaf else node
        raise invalid_value(full, expected.replace("typing.", ""), got) from None
    return OmegaConf.to_object(merged)


def _by_name(section: str, schemas: Dict[str, type], node: Any) -> Any:
    name = node.get("name") if isinstance(node, (DictConfig, dict)) else None
    if name not in schemas:
        raise unknown_name(section, name, schemas)
    return _merge(section, schemas[name], node)


def _check(ok: bool, key: str, expected: str, got: Any) -> None:
    if not ok:
        raise invalid_value(key, expected, got)


def _positive_ints(key: str, values: List[int]) -> None:
    _check(len(values) > 0 and all(v > 0 for v in values), key, "a non-empty list of positive integers", values)


def _check_pairing(model: str, data: str) -> None:
    """``model=gan`` trains on ``data=ring`` only, and ``data=ring`` has no task for other models."""
    for paired_model, paired_data in PAIRED.items():
        if model == paired_model and data != paired_data:
            raise invalid_value("data", f"data={paired_data} with model={paired_model}", data)
        if data == paired_data and model != paired_model:
            raise invalid_value("model", f"model={paired_model} with data={paired_data}", model)


def _check_data_and_task_loss(model: Any, data: Any) -> None:
    for key in ("n_features", "n_targets"):
        if hasattr(data, key):
            _check(getattr(data, key) >= 1, f"data.{key}", "an integer >= 1", getattr(data, key))
    if hasattr(data, "noise"):
        _check(math.isfinite(data.noise) and data.noise >= 0, "data.noise", "a finite number >= 0", data.noise)
    task_loss = getattr(data, "task_loss", None)
    if task_loss is None:
        return
    if task_loss not in REGRESSION_LOSSES:
        raise unknown_name("data.task_loss", task_loss, REGRESSION_LOSSES)
    if task_loss == "squared_log_error" and getattr(model, "output_activation", None) not in POSITIVE_OUTPUTS:
        raise invalid_value("model.output_activation", f"one of {', '.join(POSITIVE_OUTPUTS)} (data.task_loss="
                            "squared_log_error takes log ŷ)", getattr(model, "output_activation", None))


@functools.lru_cache(maxsize=None)
def component_options(kind: str) -> Optional[Tuple[str, ...]]:
    """A component's option names: the keys of ``conf/loss/<kind>.yaml`` (which lists every option
    with its default, like the class's constructor), read without importing the class or TensorFlow.
    None for a component without such a file: its class checks its options when it is built."""
    if kind not in available():
        raise unknown_name("loss component", kind, available())
    path = CONF_DIR / "loss" / f"{kind}.yaml"
    if not path.is_file():
        return None
    options = OmegaConf.load(path).get(kind) or {}
    return tuple(sorted(options)) + (KIND_KEY, PLAYER_KEY)


def _check_component_keys(name: str, options: Any) -> None:
    """``loss.<name>`` is a mapping of known options of its kind (``kind:``, default: ``name``)."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise invalid_value(f"loss.{name}", "a mapping of option to value", options)
    kind = options.get(KIND_KEY, name)
    if KIND_KEY in options and kind not in available():
        raise ConfigError(f"Unknown loss component {kind!r} in loss.{name}.kind: valid choices are "
                          f"{', '.join(available())}")
    valid = component_options(str(kind))
    for option in options if valid is not None else ():
        if option not in valid:
            raise ConfigError(f"Unknown key loss.{name}.{option}: valid keys are {', '.join(valid)}")


def validate(cfg: DictConfig) -> LossexpConfig:
    """Return the typed config or raise :class:`ConfigError` naming the first bad key."""
    top = {"model", "data", "loss", "optimizer", "trainer", "tracking", "objective"}
    extra = sorted(set(cfg.keys()) - top - {"hydra"})
    if extra:
        raise ConfigError(f"Unknown key {extra[0]}: valid keys are {', '.join(sorted(top))}")
    model = _by_name("model", MODEL_SCHEMAS, cfg.get("model"))
    data = _by_name("data", DATA_SCHEMAS, cfg.get("data"))
    optimizer = _merge("optimizer", OptimizerConfig, cfg.get("optimizer"))
    trainer = _merge("trainer", TrainerConfig, cfg.get("trainer"))
    tracking = _merge("tracking", TrackingConfig, cfg.get("tracking", {}))
    objective = _merge("objective", ObjectiveConfig, cfg.get("objective", {}))
    if objective.direction not in DIRECTIONS:
        raise unknown_name("objective.direction", objective.direction, DIRECTIONS)
    loss = cfg.get("loss") or {}
    if not isinstance(loss, (DictConfig, dict)):
        raise invalid_value("loss", "a mapping of component name to options", loss)
    loss = OmegaConf.to_container(loss, resolve=True) if isinstance(loss, DictConfig) else dict(loss)
    for name, options in loss.items():
        _check_component_keys(name, options)
        if isinstance(options, dict) and "weight" in options:
            parse_weight(f"loss.{name}.weight", options["weight"])  # fails here, before TensorFlow loads

    if isinstance(model, MLPConfig):
        _positive_ints("model.hidden_units", model.hidden_units)
    if isinstance(model, CNNConfig):
        _positive_ints("model.filters", model.filters)
        _check(model.kernel_size > 0, "model.kernel_size", "a positive integer", model.kernel_size)
        _check(model.dense_units > 0, "model.dense_units", "a positive integer", model.dense_units)
    if isinstance(model, VAEConfig):
        _positive_ints("model.encoder_units", model.encoder_units)
        _positive_ints("model.decoder_units", model.decoder_units)
        _check(model.latent_dim > 0, "model.latent_dim", "a positive integer", model.latent_dim)
    if isinstance(model, GANConfig):
        _check(model.latent_dim > 0, "model.latent_dim", "a positive integer", model.latent_dim)
        _positive_ints("model.generator_units", model.generator_units)
        _positive_ints("model.discriminator_units", model.discriminator_units)
    if isinstance(data, RingConfig):
        _check(math.isfinite(data.radius) and data.radius > 0, "data.radius", "a positive finite number", data.radius)
        _check(math.isfinite(data.std) and data.std > 0, "data.std", "a positive finite number", data.std)
    _check_pairing(model.name, data.name)
    if getattr(data, "n_samples", None) is not None:
        _check(data.n_samples >= 10, "data.n_samples", "at least 10", data.n_samples)
    _check_data_and_task_loss(model, data)
    if optimizer.name not in OPTIMIZERS:
        raise unknown_name("optimizer", optimizer.name, OPTIMIZERS)
    lr = optimizer.learning_rate
    _check(math.isfinite(lr) and lr > 0, "optimizer.learning_rate", "a positive finite number", lr)
    _check(optimizer.momentum >= 0, "optimizer.momentum", "a number >= 0", optimizer.momentum)
    _check(trainer.epochs >= 1, "trainer.epochs", "an integer >= 1", trainer.epochs)
    _check(trainer.batch_size >= 1, "trainer.batch_size", "an integer >= 1", trainer.batch_size)
    split = trainer.validation_split
    _check(0 <= split < 1, "trainer.validation_split", "0 <= validation_split < 1", split)
    _check(trainer.log_every_n_steps >= 1, "trainer.log_every_n_steps", "an integer >= 1", trainer.log_every_n_steps)
    spe = trainer.steps_per_execution
    _check(spe is None or spe >= 1, "trainer.steps_per_execution", "null or an integer >= 1", spe)
    _check(math.isfinite(tracking.heartbeat_s) and tracking.heartbeat_s > 0, "tracking.heartbeat_s",
           "a positive number of seconds", tracking.heartbeat_s)
    _check(tracking.stale_after_s > tracking.heartbeat_s, "tracking.stale_after_s",
           f"more seconds than tracking.heartbeat_s ({tracking.heartbeat_s:g})", tracking.stale_after_s)
    _check(trainer.verbose in (0, 1, 2), "trainer.verbose", "0, 1 or 2", trainer.verbose)
    return LossexpConfig(model, data, loss, optimizer, trainer, tracking, objective)
