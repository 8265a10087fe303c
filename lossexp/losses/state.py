"""What a run records of the components' non-trainable state: ``weight/state/<c>/<v>``.

A component's state — class centres, a queue of embeddings and its pointer, a multiplier moved by
ascent — is what it made with ``add_weight(trainable=False)`` in ``attach``. Its motion is what a
researcher checks first (do the centres move? does the queue fill?), and before this module the run
recorded none of it: only the saved model held where it ended. Recorded at every logging step, as
the trained variables are (``weight/var/…``): a scalar's value, a tensor's Frobenius norm
(``….norm``), computed in one compiled function per composition that returns only those scalars (a
queue of 65,536 embeddings never copied to NumPy).

Left out: the variables of the component's weight (``weight/<c>`` records it), those of its inner
layers (a frozen teacher's weights are not the component's state), and what the component's class
leaves out of :attr:`~lossexp.losses.base.LossComponent.recorded_state` (``hist_avg`` declares none: a
reference per weight tensor of the network, its own drift is ``weight_drift/from_avg``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import keras

from lossexp import metric_names
from lossexp.errors import ConfigError


def own_state(component: Any) -> List[keras.Variable]:
    """The non-trainable variables ``component`` made itself (not its weight's, not its inner layers')."""
    weighting = [v for v in vars(component.weighting).values() if isinstance(v, keras.Variable)]
    inner = [v for layer in component._flatten_layers(include_self=False) for v in layer.weights]
    excluded = {id(v) for v in weighting + inner}
    return [v for v in component.non_trainable_variables if id(v) not in excluded]


def recorded_state(component: Any) -> List[keras.Variable]:
    """The variables of :func:`own_state` that ``component``'s class records (every one unless it names some)."""
    names = type(component).recorded_state
    state = own_state(component)
    return state if names is None else [v for v in state if v.name in names]


def keyed_state(component: Any) -> List[Tuple[str, keras.Variable]]:
    """The variables of :func:`recorded_state`, each with its ``weight/state/…`` key."""
    state = recorded_state(component)
    labels = metric_names.variable_labels(component.name, state)
    return [(metric_names.component_state(component.name, label, tensor=len(variable.shape) > 0), variable)
            for variable, label in zip(state, labels)]


def check_recorded_state(component: Any) -> None:
    """One line for a ``recorded_state`` naming a variable the attached component does not have."""
    names = type(component).recorded_state
    existing = [v.name for v in own_state(component)]
    missing = [name for name in names or () if name not in existing]
    if missing:
        raise ConfigError(f"Invalid loss component {type(component).__name__}: its recorded_state names "
                          f"{', '.join(map(repr, missing))}, which is not a non-trainable variable it made in attach "
                          f"(add_weight(trainable=False)); the ones it made: {', '.join(existing) or '(none)'}")


class StateSummary:
    """``weight/state/…`` of some components, computed by one compiled function (made again if their state changes)."""

    def __init__(self, components: Sequence[Any]) -> None:
        self.components = list(components)
        self._made_for: Tuple[int, ...] = ()
        self._function: Any = None

    def __call__(self) -> Dict[str, Any]:
        """Each recorded variable's summary now: name → scalar tensor (empty, and no call, when there is none)."""
        entries = [entry for component in self.components for entry in keyed_state(component)]
        if not entries:
            return {}
        made_for = tuple(id(v) for _, v in entries)
        if made_for != self._made_for:
            self._function, self._made_for = _compiled(entries), made_for
        return self._function()


def _compiled(entries: List[Tuple[str, keras.Variable]]) -> Any:
    """A function of no arguments returning every entry's summary, by its key (no autograph: no Python
    control flow)."""
    import tensorflow as tf

    def summaries() -> Dict[str, Any]:
        values = {}
        for key, variable in entries:
            value = tf.convert_to_tensor(variable)
            if not value.dtype.is_floating:  # a count, a queue's pointer, a flag
                value = tf.cast(value, tf.float64)
            values[key] = value if value.shape.rank == 0 else tf.norm(tf.reshape(value, [-1]))
        return values

    return tf.function(summaries, autograph=False)
