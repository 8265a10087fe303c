"""The composed config, validated: a typo, a wrong type or a value out of range fails before anything runs.

Hydra composes plain YAML (lossexp's ``conf/`` and the user project's). :func:`validate` turns
it into a :class:`LossexpConfig`:

* ``model``, ``data``, ``optimizer``: a :class:`Selection` — the registered part's name and its
  options, checked against the part's own signature (:mod:`lossexp.options`), whoever wrote it;
* ``loss``: one entry per component instance, checked by :mod:`lossexp.losses.entries`;
* ``task``, ``trainer``, ``tracking``, ``objective``: dataclass schemas below, with range checks.

The model and the data must suit each other's regime (:func:`lossexp.training.trainer.check_pairing`).
Nothing here imports TensorFlow for lossexp's own parts; a user's module is imported when a
config names its part.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossexp import registry
from lossexp.errors import ConfigError, invalid_value, unknown_name
from lossexp.options import check
from lossexp.sweeps.objective import check_objective

#: the value Hydra leaves for a required option nobody set (``path: ???``)
MISSING = "???"


@dataclass
class Selection:
    """A config group's choice: the registered part's ``name`` and its checked ``options``."""

    name: str
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskConfig:
    """What the supervised model is trained on (see :mod:`lossexp.training.task`)."""

    #: null: the model's own (vae: reconstruction), else inferred from the data's targets
    type: Optional[str] = None
    #: null: the task's default; any Keras loss name, lossexp's, or for several outputs {output: name} or a
    #: list of names in the outputs' order (as Keras' ``compile(loss=[…])``)
    loss: Optional[Any] = None
    #: null: the task's default; Keras metric names
    metrics: Optional[List[str]] = None
    #: null: inferred (a classifier whose outputs are not probabilities outputs logits)
    from_logits: Optional[bool] = None
    #: null, ``balanced`` or {class: weight}: training examples weighted by class
    #: (:mod:`lossexp.training.class_weights`)
    class_weight: Optional[Any] = None
    #: null: each output weighs 1; {output: weight} for a network of several outputs, as Keras'
    #: ``compile(loss_weights=…)`` (an output not named weighs 1)
    loss_weights: Optional[Dict[str, float]] = None
    #: false: the task loss is one part of the loss; true (several outputs): each output's weighted loss
    #: is a part of its own, ``task.<output>``, that a weighting method weighs and the gradient
    #: diagnostics measure apart
    split_outputs: bool = False


TASK_TYPES = ("classification", "regression", "reconstruction", "multi_output")
#: ``trainer.shuffle`` (:mod:`lossexp.training.epoch_order`)
SHUFFLES = ("each_epoch", "once", "none")


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
    #: null: one device; mirrored: tf.distribute.MirroredStrategy over every local device
    distribute: Optional[str] = None
    #: split the CPU into this many logical devices (null: leave it); for mirrored on one machine
    logical_devices: Optional[int] = None
    #: float32, or a Keras mixed-precision policy (mixed_bfloat16, mixed_float16)
    precision: str = "float32"
    #: XLA-compile the train step (true/false); null: Keras' choice, which is off on a CPU-only machine
    jit_compile: Optional[bool] = None
    #: save the training state at each epoch's end (deleted when the run finishes), so that a run
    #: that stopped continues with ``lossexp train --resume RUN_ID``
    checkpoint: bool = True
    #: stop when ``monitor`` has not improved for this many epochs, the best epoch's weights
    #: restored (null: train every epoch)
    patience: Optional[int] = None
    #: what early stopping watches (read only with ``patience``; set alone, a run warns that it changes nothing)
    monitor: str = "val_loss"
    #: the training examples' order: each_epoch (a new order every epoch, drawn from seed and epoch),
    #: once (one order, repeated every epoch: Keras' fit on arrays under a fixed seed), none (the data's)
    shuffle: str = "each_epoch"

    @property
    def keras_jit_compile(self) -> Any:
        """``jit_compile`` as ``Model.compile`` takes it (null: ``"auto"``)."""
        return "auto" if self.jit_compile is None else self.jit_compile

    @property
    def execution_steps(self) -> int:
        """Steps per compiled call: ``steps_per_execution``, else one logging interval; one under a
        distribution strategy (Keras 3.15's multi-step loop fails under tf.distribute)."""
        if self.distribute is not None:
            return 1
        return self.steps_per_execution or self.log_every_n_steps

    @property
    def unread_monitor(self) -> Optional[str]:
        """The warning for a ``monitor`` of one's own without ``patience``: only early stopping reads it, so
        the run trains every epoch as if it were not set (None: nothing to say)."""
        if self.patience or self.monitor == TrainerConfig.monitor:
            return None
        return (f"lossexp: warning: trainer.monitor={self.monitor} is read by early stopping only, which "
                "trainer.patience=null leaves off: every epoch trains (set trainer.patience=N to stop after N epochs "
                "without improvement)")


@dataclass
class TrackingConfig:
    enabled: bool = True
    #: MLflow tracking URI; empty means ``$MLFLOW_TRACKING_URI`` or ``outputs/mlflow.db``.
    uri: Optional[str] = None
    experiment: str = "lossexp"
    run_name: Optional[str] = None
    #: per-layer weight-drift statistics (``weight_drift/…``), measured every ``drift_every_n_steps``
    drift: bool = True
    #: training steps between two drift measurements (each reads every weight about fifteen times)
    drift_every_n_steps: int = 100
    plots: bool = True
    log_model: bool = True
    #: MLflow's system metrics (CPU, memory, disk, network; GPU when present) as ``system/…``
    system_metrics: bool = False
    #: per-task gradient diagnostics (``weight_grad/…``), sampled every ``gradients_every_n_steps``
    gradients: bool = True
    #: training steps between two samples of the gradient diagnostics (each costs a backward pass per part)
    gradients_every_n_steps: int = 100
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
    """What a job returns to a sweeper (Optuna): the final value of ``metric``, to ``direction``;
    or of each of ``metrics`` to ``directions`` (several objectives; see lossexp.sweeps.objective)."""

    metric: str = "val_loss"
    direction: str = "minimize"
    metrics: List[str] = field(default_factory=list)
    directions: List[str] = field(default_factory=list)


@dataclass
class AblationConfig:
    """``lossexp ablate`` sweeps ``leave_out``: the run trains the composition without that component."""

    #: a key of ``loss:`` to leave out of this run (null: the whole composition)
    leave_out: Optional[str] = None


@dataclass
class LossexpConfig:
    """The whole validated config, as the runner reads it."""

    model: Selection
    data: Selection
    optimizer: Selection
    loss: Dict[str, Any]
    trainer: TrainerConfig
    tracking: TrackingConfig
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    weighting: Selection = field(default_factory=lambda: Selection("equal"))
    ablation: AblationConfig = field(default_factory=AblationConfig)


TOP_KEYS = ("ablation", "data", "loss", "model", "objective", "optimizer", "task", "tracking", "trainer", "weighting")


def _merge(section: str, schema: type, node: Any) -> Any:
    """Merge ``node`` into ``schema``; turn OmegaConf's multi-line errors into one line."""
    valid = ", ".join(f.name for f in fields(schema))
    if node is None:
        node = {}
    if not isinstance(node, (DictConfig, dict)):
        raise invalid_value(section, f"a mapping with keys {valid}", node)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
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


def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=False)
    return node


def group_choice(cfg: Any, group: str) -> Optional[str]:
    """The option of a config group ``cfg`` was composed with (``model=my_net``: ``my_net``), from its
    ``hydra`` section (composed with it, as the pre-check does) or the running Hydra job; else None."""
    from hydra.core.hydra_config import HydraConfig

    chosen = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}", default=None) if cfg is not None else None
    if chosen is None and HydraConfig.initialized():
        chosen = HydraConfig.get().runtime.choices.get(group)
    return chosen


def selection(kind: str, node: Any, cfg: Any = None) -> Selection:
    """The ``name`` and checked options of a ``model``/``data``/``optimizer`` section (of the config
    ``cfg``, whose choices name the YAML that forgot its ``name``)."""
    label = registry.KINDS[kind].label
    node = _plain(node)
    name = node.get("name") if isinstance(node, dict) else None
    if isinstance(node, dict) and "name" not in node:  # a YAML of one's own that forgot its first line
        chosen = group_choice(cfg, kind)
        where = f"the YAML of {kind}={chosen} (conf/{kind}/{chosen}.yaml)" if chosen else f"the {kind} section"
        raise ConfigError(f"Missing value for {kind}.name: {where} must name the registered {label} it configures, "
                          f"e.g. name: {chosen or '...'} (registered: {', '.join(sorted(registry.available(kind)))})")
    if not isinstance(name, str) or name not in registry.available(kind):
        raise unknown_name(label, name, registry.available(kind))
    given = {key: value for key, value in node.items() if key != "name" and value != MISSING}
    if kind == "optimizer":  # Keras' classes: keys are their YAML's (Hydra), checked when built; known values now
        from lossexp.optimizers import check_options

        check_options(name, given)
        return Selection(name, given)
    entry = registry.get(kind, name)
    options = entry.options()
    missing = [key for key, value in node.items() if value == MISSING and key in options]
    if missing:
        raise ConfigError(f"Missing value for {kind}.{missing[0]}: {kind}={name} requires it "
                          f"(e.g. {kind}.{missing[0]}=...)")
    try:
        return Selection(name, check(kind, options, given))
    except ConfigError as error:  # weighting=dwa weighting.name=mgda: dwa's temperature blamed, never typed
        chosen = group_choice(cfg, kind)
        unknown = str(error).split(":")[0].rpartition(".")[2] if str(error).startswith("Unknown key") else None
        if not chosen or chosen == name or chosen not in registry.available(kind) or unknown is None \
                or unknown not in registry.get(kind, chosen).options():
            raise
        raise ConfigError(f"{error} ({kind}.name={name} keeps the options of {kind}={chosen}, which chose the YAML: "
                          f"choose {kind}={name} instead)") from None


def _check(ok: bool, key: str, expected: str, got: Any) -> None:
    if not ok:
        raise invalid_value(key, expected, got)


def _check_trainer(trainer: TrainerConfig) -> None:
    _check(trainer.epochs >= 1, "trainer.epochs", "an integer >= 1", trainer.epochs)
    _check(trainer.batch_size >= 1, "trainer.batch_size", "an integer >= 1", trainer.batch_size)
    split = trainer.validation_split
    _check(0 <= split < 1, "trainer.validation_split", "0 <= validation_split < 1", split)
    _check(trainer.log_every_n_steps >= 1, "trainer.log_every_n_steps", "an integer >= 1", trainer.log_every_n_steps)
    spe = trainer.steps_per_execution
    _check(spe is None or spe >= 1, "trainer.steps_per_execution", "null or an integer >= 1", spe)
    _check(trainer.verbose in (0, 1, 2), "trainer.verbose", "0, 1 or 2", trainer.verbose)
    from lossexp.training.devices import PRECISIONS, STRATEGIES

    if trainer.distribute is not None and trainer.distribute not in STRATEGIES:
        raise unknown_name("trainer.distribute", trainer.distribute, STRATEGIES)
    if trainer.precision not in PRECISIONS:
        raise unknown_name("trainer.precision", trainer.precision, PRECISIONS)
    if trainer.shuffle not in SHUFFLES:
        raise unknown_name("trainer.shuffle", trainer.shuffle, SHUFFLES)
    _check(trainer.distribute is None or spe in (None, 1), "trainer.steps_per_execution",
           "null or 1 with trainer.distribute (Keras 3.15 runs one step per call under tf.distribute)", spe)
    devices = trainer.logical_devices
    _check(devices is None or devices >= 1, "trainer.logical_devices", "null or an integer >= 1", devices)
    _check(trainer.patience is None or trainer.patience >= 1, "trainer.patience", "null or an integer >= 1",
           trainer.patience)


def _check_placement(trainer: TrainerConfig, model_name: str, regime_class: type) -> None:
    """A regime that runs on one device only (``Trainer.places``) is refused ``trainer.distribute``."""
    if not regime_class.places:
        _check(trainer.distribute is None, "trainer.distribute",
               f"null for model={model_name} (its training regime runs on one device)", trainer.distribute)


def _check_tracking(tracking: TrackingConfig) -> None:
    _check(math.isfinite(tracking.heartbeat_s) and tracking.heartbeat_s > 0, "tracking.heartbeat_s",
           "a positive number of seconds", tracking.heartbeat_s)
    _check(tracking.stale_after_s > tracking.heartbeat_s, "tracking.stale_after_s",
           f"more seconds than tracking.heartbeat_s ({tracking.heartbeat_s:g})", tracking.stale_after_s)
    _check(isinstance(tracking.drift_every_n_steps, int) and tracking.drift_every_n_steps >= 1,
           "tracking.drift_every_n_steps", "a whole number of steps >= 1", tracking.drift_every_n_steps)
    _check(isinstance(tracking.gradients_every_n_steps, int) and tracking.gradients_every_n_steps >= 1,
           "tracking.gradients_every_n_steps", "a whole number of steps >= 1", tracking.gradients_every_n_steps)


def _task(node: Any) -> TaskConfig:
    node = _plain(node) or {}
    if not isinstance(node, dict):
        raise invalid_value("task", "a mapping with keys " + ", ".join(f.name for f in fields(TaskConfig)), node)
    unknown = sorted(set(node) - {f.name for f in fields(TaskConfig)})
    if unknown:
        raise ConfigError(f"Unknown key task.{unknown[0]}: valid keys are "
                          + ", ".join(f.name for f in fields(TaskConfig)))
    task = TaskConfig(**node)
    if task.type is not None and task.type not in TASK_TYPES:
        raise unknown_name("task.type", task.type, TASK_TYPES)
    _check(task.loss is None or isinstance(task.loss, (str, dict)) or (
        isinstance(task.loss, list) and all(isinstance(name, str) for name in task.loss)), "task.loss",
        "a loss name, or for several outputs a mapping of output name to loss name or a list of loss names in "
        "the outputs' order", task.loss)
    _check(task.metrics is None or (isinstance(task.metrics, list) and all(isinstance(m, str) for m in task.metrics)),
           "task.metrics", "a list of metric names", task.metrics)
    _check(task.from_logits in (None, True, False), "task.from_logits", "null, true or false", task.from_logits)
    _check(task.loss_weights is None or (isinstance(task.loss_weights, (dict, list)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in (task.loss_weights.values() if isinstance(task.loss_weights, dict) else task.loss_weights))),
        "task.loss_weights", "null, a mapping of output name to a weight >= 0 or a list of them in the outputs' order",
        task.loss_weights)
    _check(task.split_outputs in (True, False), "task.split_outputs", "true or false", task.split_outputs)
    weights = task.class_weight
    _check(weights is None or weights == "balanced" or (
        isinstance(weights, dict) and all(str(k).isdigit() and isinstance(v, (int, float)) and not isinstance(v, bool)
                                          and math.isfinite(v) and v >= 0 for k, v in weights.items())),
        "task.class_weight", "null, balanced or a mapping of class index to a weight >= 0", weights)
    return task


def validate(cfg: DictConfig) -> LossexpConfig:
    """Return the typed config or raise :class:`ConfigError` naming the first bad key."""
    from lossexp.losses.entries import check_entry
    from lossexp.training.trainer import check_pairing, regime, regime_name

    extra = sorted(set(cfg.keys()) - set(TOP_KEYS) - {"hydra"})
    if extra:
        raise ConfigError(f"Unknown key {extra[0]}: valid keys are {', '.join(TOP_KEYS)}")
    model = selection("model", cfg.get("model"), cfg)
    data = selection("data", cfg.get("data"), cfg)
    optimizer = selection("optimizer", cfg.get("optimizer"), cfg)
    trainer = _merge("trainer", TrainerConfig, cfg.get("trainer"))
    tracking = _merge("tracking", TrackingConfig, cfg.get("tracking"))
    objective = _merge("objective", ObjectiveConfig, cfg.get("objective"))
    ablation = _merge("ablation", AblationConfig, cfg.get("ablation"))
    weighting = selection("weighting", cfg.get("weighting") or {"name": "equal"}, cfg)
    task = _task(cfg.get("task"))
    check_objective(objective)
    loss = _plain(cfg.get("loss")) or {}
    if not isinstance(loss, dict):
        raise invalid_value("loss", "a mapping of component name to options", loss)
    entry_keys = regime(regime_name(model.name)).entry_keys
    for name, options in loss.items():
        check_entry(name, options, entry_keys)
    loss = _leave_out(loss, ablation.leave_out)
    check_pairing(model.name, data.name, registry.get("data", data.name).meta.get("task"))
    regime(regime_name(model.name)).check_weighting(weighting.name, model.name)
    _check_trainer(trainer)
    _check_placement(trainer, model.name, regime(regime_name(model.name)))
    _check_tracking(tracking)
    return LossexpConfig(model, data, optimizer, loss, trainer, tracking, objective, task, weighting, ablation)


def _leave_out(loss: Dict[str, Any], component: Optional[str]) -> Dict[str, Any]:
    """The ``loss:`` entries without ``ablation.leave_out`` (which must be one of them)."""
    if component is None:
        return loss
    if component not in loss:
        raise invalid_value("ablation.leave_out", f"one of the loss components ({', '.join(loss) or 'none'}) or null",
                            component)
    return {name: options for name, options in loss.items() if name != component}
