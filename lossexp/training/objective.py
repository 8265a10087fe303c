"""The objective regime: a model that is its parameters, trained on its loss components alone.

A test function of multi-objective optimisation (CAGrad's two-objective toy) is a function of a
point θ, with no data and no task loss. Its network (``model=point``) outputs θ; its losses are
components, so the weighting methods (``weighting=``) balance them as the parts of the loss, in the
same compiled step as any supervised model (:class:`~lossexp.training.composed_model.ComposedModel`
with ``task_loss=None``). The data (``data=steps``) is one dummy example per step: every example
trains, there is no validation split.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

from lossexp import registry
from lossexp.errors import ConfigError, invalid_value
from lossexp.registry import register_trainer
from lossexp.training.network_checks import CHECKED_EXAMPLES, check_terms, ensure_network
from lossexp.training.supervised import SupervisedTrainer, compose, watch_gradients


@register_trainer("objective")
class ObjectiveTrainer(SupervisedTrainer):
    """θ trained on Σ (weighted) components, balanced by the weighting method (see the module docstring)."""

    tasks = ("objective",)
    #: its models are ComposedModels too, but have no validation split: ``lossexp evaluate`` has nothing to score
    saved_class = ""
    can_evaluate = False

    def prepare(self, data: Any, network: Any = None) -> Any:
        return data

    def build(self, data: Any, network: Any = None, components: Optional[Sequence[Any]] = None) -> Any:
        from lossexp.losses.entries import build_components
        from lossexp.optimizers import build_optimizer

        config = self.config
        name = config.model.name
        if config.trainer.distribute is not None:
            raise invalid_value("trainer.distribute", f"null for model={name} (one point, one example per step: "
                                "nothing to distribute)", config.trainer.distribute)
        network = ensure_network(network if network is not None else registry.build("model", config.model, data=data),
                                 data, name)
        components = build_components(config.loss) if components is None else list(components)
        if not components:
            raise ConfigError(f"Invalid value for loss: model={name} is trained on its loss components alone "
                              "(no task loss); give at least one, e.g. loss=[mtl_toy_l1,mtl_toy_l2]")
        model = compose(network, components, task_loss=None, name=f"{name}_composed",
                        weighting=registry.build("weighting", config.weighting))
        model.compile(optimizer=build_optimizer(config.optimizer), steps_per_execution=config.trainer.execution_steps)
        x, y = data.sample(CHECKED_EXAMPLES)
        check_terms(model, x, y)
        watch_gradients(model, config)
        return model

    def splits(self, data: Any) -> Tuple[Any, Optional[Any]]:
        """Every example trains (a step each at batch size 1): no validation split."""
        from lossexp.data import Part

        return Part(arrays=(data.joined_x, data.y), size=data.examples), None

    def fit_arguments(self, data: Any) -> Dict[str, Any]:
        return {"x": data.joined_x, "y": data.y, "batch_size": self.config.trainer.batch_size, "shuffle": False}
