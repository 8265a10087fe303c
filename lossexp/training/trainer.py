"""The training-regime protocol: how a model family becomes one trainable Keras model.

Most models are *supervised* (:mod:`lossexp.training.supervised`): a network, a task loss and the
loss components, in one :class:`~lossexp.training.composed_model.ComposedModel`. A family that
needs its own training step — the GAN's two players and two optimizers
(:mod:`lossexp.training.adversarial`) — registers a regime of its own
(:func:`lossexp.register_trainer`) and names it when its builder is registered
(``@register_model("gan", trainer="adversarial")``). The runner (``train.py``), the pre-check and
``lossexp evaluate`` only ever talk to this protocol, never to a model by name.

Regime modules import Keras inside their methods, so that the config check can read a regime's
:attr:`Trainer.tasks` before TensorFlow loads.

What a regime of the user's must do (measured on a WGAN-GP regime written against this contract):

* :meth:`Trainer.build` compiles with ``steps_per_execution=config.trainer.execution_steps``: at
  Keras' default of 1 a step of it cost 2.35 ms of CPU against 1.51 ms (a hand-written
  ``tf.function`` loop: 1.69 ms).
* its model's ``train_step`` returns a dict of metrics, each recorded as it is named: a player's
  loss as ``loss/<player>``; with neither ``loss`` nor ``val_loss`` among them, override
  :meth:`Trainer.fallback_objective` or no objective is recorded (a warning line says so).
* components: ``lossexp.losses.entries.build_components(config.loss)`` builds them,
  ``lossexp.losses.base.attach(component, network)`` attaches each to the network whose weights it
  reads, and a :class:`~lossexp.losses.composition.Composition` of them, called in the step on a
  :class:`~lossexp.losses.base.LossContext` and the player's own loss, gives the total, the terms and
  the ``term/<c>``, ``loss/<c>`` values; its ``after_step(terms)`` follows the optimizer's update
  (``hist_avg``'s average). List them in ``model.components``. A component that taps a layer's output
  (``activity``: ``insert_after()``) needs its taps in the network before it is attached,
  ``lossexp.training.rewire.insert_taps(network, {layer: [tap, …]})``; its term is then the layer's
  output in the network's last call of the step (a critic called on mixed, real, then fake points: the fake).
* state: every variable the step reads is a Keras variable of the model (a ``SeedGenerator``
  attribute for its noise) and every optimizer an attribute of it; the checkpoint saves them all,
  and ``--resume`` continues bitwise (WGAN-GP: 36 weights and every metric equal to the
  uninterrupted run's). Weight drift is measured per layer of ``model.network`` if it has one, else
  per top-level layer (a player's whole network). Gradient diagnostics: the model's
  ``step_gradients`` (:class:`lossexp.training.step_gradients.StepGradients`, ``for_config``), whose
  ``measure`` the step calls per player before its update; the runner reads and records them.
* the model's class is ``@keras.saving.register_keras_serializable`` in a project module, with
  ``get_config``/``from_config``, named in :attr:`Trainer.saved_class`; ``lossexp evaluate`` scores
  it only with :attr:`Trainer.can_evaluate` and :meth:`Trainer.evaluate`.
* arrays are fed by :meth:`Trainer.array_fit_arguments`, in ``trainer.shuffle``'s order (the
  runner adds the ordering callback when :meth:`Trainer.callbacks` leaves it out).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

from lossexp import registry
from lossexp.errors import ConfigError, invalid_value

DEFAULT = "supervised"


class Trainer:
    """A training regime (see the module docstring). One instance per run, from the validated config."""

    #: data tasks the regime trains on
    tasks: ClassVar[Tuple[str, ...]] = ()
    #: keys of a ``loss:`` entry the regime reads itself (not component options), e.g. ``player``
    entry_keys: ClassVar[Tuple[str, ...]] = ()
    #: the registered Keras class of the model the regime builds and saves (``lossexp>ComposedModel``)
    saved_class: ClassVar[str] = ""
    #: whether ``lossexp evaluate`` can score its saved models on a validation split
    can_evaluate: ClassVar[bool] = False
    #: the weighting methods (``weighting=``) the regime's step applies; None: every one
    weightings: ClassVar[Optional[Tuple[str, ...]]] = None
    #: metrics every run of the regime records, whatever its model (a sweep's pre-check trains one step to
    #: learn the others: :func:`lossexp.sweeps.checks.check_objectives_recorded`)
    records: ClassVar[Tuple[str, ...]] = ()
    #: whether its step runs under ``trainer.distribute`` (:mod:`lossexp.training.devices`); a regime that
    #: does not is refused it when the config is checked
    places: ClassVar[bool] = True

    def __init__(self, config: Any, meta: Optional[Dict[str, Any]] = None) -> None:
        self.config = config
        #: what the model's registration declares (its task, …); empty for a network given in Python
        self.meta = meta if meta is not None else registry.get("model", config.model.name).meta

    @classmethod
    def check_weighting(cls, name: str, model_name: str) -> None:
        """The regime applies the weighting method ``name`` (before TensorFlow loads)."""
        if cls.weightings is not None and name not in cls.weightings:
            raise invalid_value("weighting", f"{' or '.join(cls.weightings)} for model={model_name} (its training "
                                "step applies no other weighting method)", name)

    def prepare(self, data: Any, network: Any = None) -> Any:
        """The data set as this regime's model trains on it (default: unchanged); ``network``: one
        given by the Python API, whose outputs may tell what its targets are."""
        return data

    def prepare_for(self, data: Any, network: Any) -> Any:
        """``data`` as ``network``, built from the config, trains on it, when the network tells more
        about its targets than :meth:`prepare` saw without it (default: unchanged)."""
        return data

    def build(self, data: Any, network: Any = None, components: Optional[Sequence[Any]] = None) -> Any:
        """The compiled Keras model, its components attached. ``network``/``components`` given by
        the Python API replace the configured ones. Raises :class:`ConfigError` before any run."""
        raise NotImplementedError

    def splits(self, data: Any) -> Tuple[Any, Optional[Any]]:
        """(training, validation) parts of the data (:class:`lossexp.data.Part`; validation may be None)."""
        return data.split(self.config.trainer.validation_split)

    def fit_arguments(self, data: Any) -> Dict[str, Any]:
        """Keyword arguments of ``model.fit`` besides epochs, callbacks and verbosity."""
        raise NotImplementedError

    def array_fit_arguments(self, arrays: Tuple[Any, ...], **more: Any) -> Dict[str, Any]:
        """``model.fit``'s arguments for in-memory ``arrays`` — ``(x,)``, ``(x, y)`` or ``(x, y,
        sample_weight)`` — in ``trainer.shuffle``'s order (:mod:`lossexp.training.epoch_order`); a
        regime that feeds arrays returns these (:func:`regime_callbacks` sets each epoch's order)."""
        shuffle, batch = self.config.trainer.shuffle, self.config.trainer.batch_size
        if shuffle == "each_epoch":
            # shuffle: the stream is in its epoch's order (Keras would warn that it cannot shuffle it);
            # validation arrays are batched as the training ones, not in Keras' default of 32
            return {"x": self._epoch_order.batches(arrays if len(arrays) > 1 else arrays[0], batch),
                    "shuffle": False, "validation_batch_size": batch, **more}
        x, y, weight = (*arrays, None, None)[:3]
        return {"x": x, "y": y, "sample_weight": weight, "batch_size": batch, "shuffle": shuffle == "once", **more}

    def stream_order(self) -> Any:
        """How a training stream is shuffled, by ``trainer.shuffle`` (None: in its own order; with
        ``each_epoch``, :func:`regime_callbacks` sets each epoch's order)."""
        from lossexp.training.epoch_order import OneOrder

        shuffle = self.config.trainer.shuffle
        if shuffle == "each_epoch":
            return self._epoch_order
        return OneOrder(self.config.trainer.seed) if shuffle == "once" else None

    def ordering_callbacks(self) -> List[Any]:
        """The callback that sets each epoch's order of the arrays :meth:`array_fit_arguments` and the
        stream :meth:`stream_order` shuffles feed."""
        return [self._epoch_order] if self.config.trainer.shuffle == "each_epoch" else []

    @functools.cached_property
    def _epoch_order(self) -> Any:
        from lossexp.training.epoch_order import EpochOrder

        return EpochOrder(self.config.trainer.seed)

    def serving_network(self, model: Any) -> Any:
        """What a served model runs on new inputs (the logged MLflow model's python_function flavor)."""
        return model.network

    def callbacks(self, model: Any, data: Any) -> List[Any]:
        """Callbacks of the regime's own, run before the recorder (their metrics are recorded)."""
        return []

    def artifacts(self, callbacks: List[Any], output_dir: Path, run_name: str) -> List[Path]:
        """Files to log after training (e.g. a picture of generated samples)."""
        return []

    def fallback_objective(self, history: Dict[str, List[float]]) -> Optional[float]:
        """The value a sweep optimises when ``val_loss`` is not recorded (default: the training loss)."""
        return float(history["loss"][-1]) if "loss" in history else None

    def evaluate(self, model: Any, data: Any) -> Dict[str, float]:
        """Loss and metrics of a saved model on the data's validation split (``lossexp evaluate``;
        only for regimes with :attr:`can_evaluate`)."""
        raise NotImplementedError


def regime_callbacks(trainer: Trainer, model: Any, data: Any) -> List[Any]:
    """The regime's :meth:`~Trainer.callbacks`, and its :meth:`~Trainer.ordering_callbacks` unless it
    returned them: a regime of the user's that fed :meth:`~Trainer.array_fit_arguments` without them
    trained every epoch in the first epoch's order (``trainer.shuffle: each_epoch`` was ``once``). Then
    the reader of the model's in-step gradient diagnostics (``model.step_gradients``), if it has them."""
    from lossexp.training.step_gradients import readers

    own = list(trainer.callbacks(model, data))
    return own + [c for c in trainer.ordering_callbacks() if all(c is not o for o in own)] + readers(model)


def regime_name(model_name: str) -> str:
    """The regime that trains the model registered as ``model_name``."""
    return registry.get("model", model_name).meta.get("trainer", DEFAULT)


def regime(name: str) -> type:
    return registry.get("trainer", name).resolve()


def for_config(config: Any, name: Optional[str] = None, meta: Optional[Dict[str, Any]] = None) -> Trainer:
    """The regime ``name`` (default: the configured model's), instantiated for this run; ``meta``
    replaces the model's registered declarations (a network given in Python has none)."""
    return regime(name or regime_name(config.model.name))(config, meta)


def saved_classes() -> List[str]:
    """The Keras classes of the models every regime saves (for ``lossexp evaluate``)."""
    return [regime(name).saved_class for name in registry.available("trainer") if regime(name).saved_class]


def for_saved_class(saved_class: Optional[str]) -> Optional[type]:
    """The regime whose models are saved as ``saved_class`` (None for a foreign class)."""
    for name in registry.available("trainer"):
        if regime(name).saved_class == saved_class:
            return regime(name)
    return None


def check_task(trainer: Trainer, data: Any, model_name: str) -> None:
    """The regime trains on the task of the data as loaded — a source that declares none has its task
    inferred from its targets, which :func:`check_pairing` could not see before the data was read."""
    if trainer.tasks and data.task not in trainer.tasks:
        raise invalid_value("data", f"{' or '.join(trainer.tasks)} data for model={model_name} (its training "
                            f"regime, {type(trainer).__name__}, trains no other; a data source declares its task: "
                            f"@lossexp.register_data(name, task=…))", f"{data.name}, {data.task} data")


def built_model(trainer: Trainer, model: Any) -> Any:
    """``model``, what ``trainer.build`` returned, if it is a Keras model that ``fit`` trains; else one
    line naming the regime's ``build`` and where it is (a regime of the user's may return anything)."""
    import inspect

    import keras

    if isinstance(model, keras.Model):
        return with_checked_step(model)
    build = type(trainer).build
    try:
        where = f" at {inspect.getsourcefile(build)}:{build.__code__.co_firstlineno}"
    except (TypeError, AttributeError):  # a build Python has no source for
        where = ""
    raise invalid_value("model", f"a keras.Model from the training regime's build() ({type(trainer).__name__}.build"
                        f"{where})", f"a {type(model).__module__}.{type(model).__qualname__}")


def with_checked_step(model: Any) -> Any:
    """``model``, whose own ``train_step`` (a regime of the user's) is checked, as it is traced, to return
    a mapping of metrics: a list ended the run in Keras' ``ValueError: The truth value of an array with
    more than one element is ambiguous`` traceback; it is one line naming the step's file and line."""
    import inspect

    step = type(model).train_step
    if type(model).__module__.startswith("lossexp.") or step.__module__.startswith("keras."):
        return model
    traced = model.train_step

    def train_step(data: Any) -> Any:
        logs = traced(data)
        if not isinstance(logs, Mapping):
            where = f"{inspect.getsourcefile(step)}:{step.__code__.co_firstlineno}"
            raise ConfigError(f"Your code failed in training at {where} (in {type(model).__name__}.train_step): it "
                              f"returned a {type(logs).__name__}, not a dict of metric values by name")
        return logs

    model.train_step = train_step
    return model


def ignored_components(trainer: Trainer, model: Any, loss_names: Sequence[str]) -> Optional[str]:
    """The warning line when the config names loss components and the model the regime built lists
    none in ``model.components`` (as lossexp's regimes' models list theirs): a regime of the user's
    that ignores its ``loss:`` section would have the run tagged and summarised with terms it never
    trained; None otherwise."""
    if not loss_names or getattr(model, "components", None):
        return None
    return (f"lossexp: warning: the training regime {type(trainer).__name__} built no loss components: "
            f"loss={'+'.join(loss_names)} is not trained (loss=none says so)")


def check_pairing(model_name: str, data_name: str, data_task: Optional[str]) -> None:
    """The model's regime trains on the data's task (when the data declares one)."""
    name = regime_name(model_name)
    cls = regime(name)
    if data_task is None or data_task in cls.tasks:
        return
    fitting = [f"data={n}" for n in registry.available("data") if registry.get("data", n).meta.get("task") in cls.tasks]
    others = [f"model={n}" for n in registry.available("model") if data_task in regime(regime_name(n)).tasks]
    raise invalid_value("data", f"{' or '.join(cls.tasks)} data for model={model_name} ({name} regime"
                                f"{': ' + ', '.join(fitting) if fitting else ''})",
                        f"{data_name}, {data_task} data{' (for ' + ', '.join(others) + ')' if others else ''}")
