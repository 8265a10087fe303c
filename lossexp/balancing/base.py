"""The weighting-method contract: this step's task losses (and gradients) in, one weight per task out.

optax-style and the same for every method: :meth:`WeightingMethod.weigh` receives the step's
:class:`Signals` — the task losses and, for methods that read gradients, the Gramian
``G = J Jᵀ`` of the tasks' gradients ``J`` (one row per task) on the network's weights that two or
more tasks reach (a head's own weights, under ``task.split_outputs``, are left out) — and
returns the weights α (one per task). The compiled step then updates the network along
``d = Σ αᵢ ∇Lᵢ`` = ``Jᵀα``. Every method lossexp ships is of this form: loss weightings (DWA,
uncertainty, GradNorm) set α from losses or gradient norms, and the projection and min-norm methods
(PCGrad, MGDA, CAGrad, IMTL-G) produce a direction that is a combination of the task gradients
whose coefficients depend on the Gramian only (TorchJD's view of aggregators as weightings of the
Gramian). So one signature serves all, the Gramian (K×K) is all a method handles — never the
gradients themselves — and the direction is always logged as its weights.

What a method keeps between steps (epoch averages, learned weights, an initial loss) lives in
variables it creates in :meth:`WeightingMethod.build_state` (:meth:`WeightingMethod.variable`) and
assigns inside the compiled step, so nothing is recompiled; the variables belong to a Keras layer
the model tracks (:attr:`WeightingMethod.state`), so they are saved and reloaded with it. A method
with trainable variables (``uncertainty``'s log-variances) sets :attr:`WeightingMethod.differentiable`
and the optimizer trains them through ``Σ αᵢLᵢ +`` :meth:`WeightingMethod.penalty`. Under a
distribution strategy the losses and the Gramian a method sees are those of the whole global batch
(all-reduced first), so every replica computes the same weights and state.

A method is a plain class — importing it imports no TensorFlow, so its options are checked before
TensorFlow loads — registered with ``@lossexp.register_weighting("name")`` beside
``conf/weighting/<name>.yaml``; its options are its keyword parameters, like every part's.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

from lossexp import metric_names
from lossexp.errors import ConfigError

LOSSES = "losses"
GRADIENTS = "gradients"


@dataclass
class Signals:
    """What a method sees of one training step."""

    #: the task losses, shape (K,), in :attr:`WeightingMethod.tasks` order (the global batch's)
    losses: Any
    #: Gramian (K, K) of the tasks' gradients on :meth:`WeightingMethod.gradient_layers` (gradient methods),
    #: float64 (summed in float64 where the tasks' gradients are nearly dependent:
    #: :func:`lossexp.training.task_gradients.method_gramian`)
    gramian: Any = None
    #: the training step, 1 for the first (int64 scalar: exact past 2**24 steps)
    step: Any = None


class WeightingMethod:
    """Base class of every weighting method (see the module docstring for the contract)."""

    #: what :meth:`weigh` reads: ``losses`` (one backward pass per step) or ``gradients`` (one per task)
    reads: ClassVar[str] = LOSSES
    #: whether the weights carry a gradient to the method's own trainable variables
    differentiable: ClassVar[bool] = False
    #: whether the update is the plain gradient of the total (α ≡ 1): the step is then Keras' own
    plain: ClassVar[bool] = False

    def __init__(self) -> None:
        self.tasks: List[str] = []
        self.state: Any = None

    # -- the contract --------------------------------------------------------------------------
    def build_state(self, network: Any) -> None:
        """Create the variables the method keeps between steps (``self.tasks`` is set); default none."""

    def gradient_layers(self) -> Optional[List[str]]:
        """Layers whose weights' gradients make the Gramian (``reads = gradients``); None: every
        trainable weight of the network."""
        return None

    def weigh(self, signals: Signals) -> Any:
        """The weight of each task for this step, shape (K,) (TensorFlow ops, inside the step)."""
        raise NotImplementedError

    def penalty(self) -> Any:
        """A term of the method's own variables added to the objective it trains them on (default 0)."""
        import tensorflow as tf

        return tf.zeros((), tf.float32)

    def end_epoch(self) -> None:
        """Called after each training epoch (outside the compiled step)."""

    def warning(self, weights: Sequence[float]) -> Optional[str]:
        """One line the user should read about the weights of an epoch's last step (one per task, in
        :attr:`tasks` order), said once per run (a method's known way of going wrong); default None."""
        return None

    def neglected_task(self, weights: Sequence[float], below: float) -> Optional[Tuple[str, float, str]]:
        """(``the task loss`` or ``the task losses (task.a, task.b) together``, their total weight, the
        heaviest other part) when the task losses together weigh less than ``below`` each beside other parts
        (a component): the network then follows that part and not its task. None otherwise, and when every
        part is a task loss (one output weighed to nothing is a method's Pareto answer, not a neglect)."""
        tasks = [i for i, name in enumerate(self.tasks) if name == "task" or name.startswith("task.")]
        total = sum(weights[i] for i in tasks)
        if not tasks or len(tasks) == len(self.tasks) or abs(total) >= below * len(tasks):
            return None
        top = max((weight, name) for i, (name, weight) in enumerate(zip(self.tasks, weights)) if i not in tasks)[1]
        which = "the task loss" if len(tasks) == 1 else \
            f"the task losses ({', '.join(self.tasks[i] for i in tasks)}) together"
        return which, total, top

    # -- what the runner calls ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The registered name (``weight/<name>/<task>``)."""
        return getattr(type(self), "registry_name", type(self).__name__.lower())

    @property
    def count(self) -> int:
        """K, the number of tasks."""
        return len(self.tasks)

    def attach(self, tasks: Sequence[str], network: Any) -> Any:
        """Bind the method to the model's tasks and create its state (once per model); returns the
        Keras layer holding the variables, for the model to track."""
        import keras

        self.tasks = list(tasks)
        self.state = keras.layers.Layer(name=f"weighting_{self.name}")
        self.last_weights = self.variable("last_weights", (self.count,), initializer="ones")
        self.weighed = False  # until a step is traced: last_weights holds no step's weights yet
        self.build_state(network)
        self.check_gradient_layers(network)
        self.state.built = True
        return self.state

    def check_gradient_layers(self, network: Any) -> None:
        """The layers :meth:`gradient_layers` names (a method of the user's own) are layers of ``network``
        with trainable weights: else one line now, before the run, not Keras' error as the step is traced."""
        from lossexp.losses.layer_paths import find_layer

        layers = self.gradient_layers() if self.reads == GRADIENTS else None
        weighted = [layer.name for layer in network.layers if layer.trainable_weights]
        unknown = [name for name in layers or []  # a path into a nested model (backbone/trunk_2) too
                   if not getattr(find_layer(network, name), "trainable_weights", None)]
        if unknown:
            raise ConfigError(f"Invalid value for weighting: expected {self.name}'s gradient_layers() to name layers of "
                              f"the model with trainable weights ({', '.join(weighted)}), got {unknown[0]!r}")

    def variable(self, name: str, shape: tuple, initializer: Any = "zeros", trainable: bool = False) -> Any:
        """A variable of the method's state; assigned in the step (kept once under a strategy) unless trainable."""
        kwargs = {} if trainable else {"aggregation": "only_first_replica"}
        return self.state.add_weight(name=name, shape=shape, initializer=initializer, trainable=trainable, **kwargs)

    @property
    def trainable_variables(self) -> List[Any]:
        return list(self.state.trainable_weights) if self.state is not None else []

    def weights_for(self, signals: Signals, alone: Optional[Sequence[bool]] = None) -> Any:
        """:meth:`weigh`, kept for logging; without a gradient unless the method is :attr:`differentiable`.
        ``alone`` (per task): a task that reaches none of the weights the others share, whose weight is 1
        whatever the method gives its zero row of the Gramian (its own weights follow its own gradient)."""
        import tensorflow as tf

        weights = tf.cast(self.weigh(signals), tf.float32)
        if weights.shape.as_list() != [self.count]:  # known as the step is traced: one line, not Keras' assign error
            raise self.wrong_shape(weights.shape)
        if alone is not None and any(alone):
            weights = tf.where(tf.constant(list(alone)), tf.ones_like(weights), weights)
        self.last_weights.assign(tf.stop_gradient(weights))
        self.weighed = True
        return weights if self.differentiable else tf.stop_gradient(weights)

    def wrong_shape(self, shape: Any) -> ConfigError:
        """The one line for a :meth:`weigh` (a method of the user's own) that returned not one weight per
        task: the method, where its ``weigh`` is, the shape it returned and the one expected."""
        weigh = type(self).weigh
        try:
            where = f" at {inspect.getsourcefile(weigh)}:{inspect.getsourcelines(weigh)[1]}"
        except (OSError, TypeError):  # defined where its source cannot be read (a notebook's cell)
            where = ""
        got = tuple(shape) if shape.rank is not None else "unknown"
        return ConfigError(f"Invalid value for weighting: expected {self.name}'s weigh(){where} to return one weight "
                           f"per part of the loss, shape ({self.count},) for {', '.join(self.tasks)}, got shape {got}")

    def tracked(self) -> Dict[str, Any]:
        """``weight/<method>/<task>``: the weights of the last step; none before a step is traced (the run's
        sample at step 0 logged the variable's initial ones, weights no step used: MGDA's and IMTL's sum to 1)."""
        if not self.weighed:
            return {}
        return {metric_names.method_weight(self.name, task): self.last_weights[i] for i, task in enumerate(self.tasks)}

    @classmethod
    def option_names(cls) -> List[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def options(self) -> Dict[str, Any]:
        """The options it was built with (what rebuilds it from a saved model's config)."""
        return {name: getattr(self, name) for name in self.option_names()}
