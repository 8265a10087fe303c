"""The composed loss: a base loss + Σ weightᵢ·termᵢ, in one loop every trainer shares.

optax-style: a :class:`Composition` is built from components and applied, inside the compiled
step, to a context and a base loss (the task loss of a supervised model, a player's adversarial
loss in a GAN). It returns the total, each component's unweighted term and weighted contribution,
and the values of the per-component metrics (``term/<c>``, ``loss/<c>``) in :meth:`metric_names`
order. Components that do not apply to this step (training-only terms in validation) contribute
nothing and report zeros, which the trainers leave out of the validation logs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from keras import ops

from lossexp import metric_names as names
from lossexp.losses.base import LossComponent, LossContext, zero
from lossexp.losses.state import StateSummary


@dataclass
class Composed:
    """One batch's composed loss."""

    total: Any
    #: unweighted term of each component that applied
    terms: Dict[str, Any]
    #: weighted contribution of each component that applied (what its gradient comes from)
    contributions: Dict[str, Any]
    #: ``[term, contribution]`` per component, in :meth:`Composition.metric_names` order
    values: List[Any]
    #: (variable, gradient) of the contributions given in closed form, to add to the tape's
    gradients: List[Tuple[Any, Any]]


def metric_names(component: LossComponent) -> List[str]:
    """``term/<name>`` (unweighted) and ``loss/<name>`` (weighted)."""
    return [names.term(component.name), names.loss(component.name)]


class Composition:
    """Components applied in order to a base loss (see the module docstring)."""

    def __init__(self, components: Sequence[LossComponent]) -> None:
        self.components = list(components)
        self._state = StateSummary(self.components)

    def metric_names(self) -> List[str]:
        return [name for component in self.components for name in metric_names(component)]

    def train_only_metric_names(self) -> List[str]:
        """Metrics of components that do not apply in validation (no ``val_`` value)."""
        return [name for c in self.components if not c.applies_in_validation for name in metric_names(c)]

    def __call__(self, context: LossContext, base: Any, gradient_scale: Any = None) -> Composed:
        """The composed loss of one batch. With ``gradient_scale`` (the plain update's loss scale over
        the replicas), a component that gives its gradients in closed form
        (:meth:`~lossexp.losses.base.LossComponent.closed_form_gradients`) gives them, weighted and
        scaled, in :attr:`Composed.gradients`, and its term is a constant for the tape."""
        total, terms, contributions, values, gradients = base, {}, {}, [], []
        for component in self.components:
            if not context.training and not component.applies_in_validation:
                values += [zero(), zero()]
                continue
            closed = None
            if gradient_scale is not None and context.training and component.gives_closed_form_gradients:
                multiplier = component.weighting.multiplier(context.schedule_step, training=True)
                closed = component.closed_form_gradients(context, ops.stop_gradient(multiplier) * gradient_scale)
            if closed is None:
                term = ops.cast(component.term(context), "float32")
                contribution = ops.cast(component.contribution(term, context), "float32")
            else:
                term = ops.stop_gradient(ops.cast(closed[0], "float32"))
                contribution = ops.cast(component.weighting.weighted(term, multiplier), "float32")
                gradients += closed[1]
            terms[component.name] = term
            contributions[component.name] = contribution
            values += [term, contribution]
            total = total + contribution
        return Composed(total, terms, contributions, values, gradients)

    def after_step(self, terms: Dict[str, Any]) -> None:
        """The components' updates that follow the optimizer's (dual ascent on a weight)."""
        for component in self.components:
            if component.name in terms:
                component.after_step(terms[component.name])

    def tracked_weights(self) -> Dict[str, Any]:
        """``weight/<c>`` and ``weight/coef/<c>`` of every component whose weight is not constant, the components'
        trained variables (``weight/var/…``) and their recorded state (``weight/state/…``)."""
        weights = {key: value for c in self.components for key, value in c.tracked_weights().items()}
        return {**weights, **self._state()}
