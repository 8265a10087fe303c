"""The adversarial regime: a GAN's two players, each with its own optimizer and loss components.

Each ``loss:`` entry may carry ``player: generator | discriminator | both`` (default ``both``),
read here like ``kind:``: ``both`` builds one instance per player, named ``<key>_generator`` and
``<key>_discriminator`` (Salimans et al. apply historical averaging to each player's cost); a
single player keeps the entry's key as its name. A player's component may read the player's
weights, ``y_true`` and ``y_pred`` only: components that insert layers into a network or read
intermediate outputs are rejected with one line. Errors name the user's key (``loss.hist_avg.decay``),
not the per-player instance.

The model family's builder returns the two networks and how they play
(:class:`lossexp.models.gan.Players`: packing degree, alternating or simultaneous updates); the
data set is generation data, whose scorer (the ring's mode coverage) runs every epoch. With
packing m, the regime feeds the model N rows of m real points (:mod:`lossexp.training.packing`,
seeded from ``trainer.seed``): ``trainer.batch_size`` counts rows, so a step sees batch·m real
and batch·m generated points, and an epoch is N/batch steps whatever m is (as PacGAN's code).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from lossexp import registry
from lossexp.errors import ConfigError, invalid_value
from lossexp.losses.entries import KIND_KEY
from lossexp.models.gan import Players
from lossexp.registry import register_trainer
from lossexp.training.trainer import Trainer

PLAYERS = ("discriminator", "generator")  # in the order of their steps
PLAYER_KEY = "player"
BOTH = "both"
PLAYER_CHOICES = ("generator", "discriminator", BOTH)


def instances(loss_cfg: Mapping[str, Any]) -> List[Tuple[str, str, str, Dict[str, Any]]]:
    """``[(player, instance name, the user's key, options with kind)]`` for every ``loss:`` entry."""
    planned = []
    for key, options in loss_cfg.items():
        if key in PLAYERS:
            raise ConfigError(f"Invalid loss component name {key!r} for a GAN: {', '.join(PLAYERS)} are reserved")
        options = dict(options or {})
        player = options.pop(PLAYER_KEY, BOTH)
        if player not in PLAYER_CHOICES:
            raise invalid_value(f"loss.{key}.{PLAYER_KEY}", "one of " + ", ".join(PLAYER_CHOICES), player)
        options.setdefault(KIND_KEY, key)
        for target in (PLAYERS if player == BOTH else (player,)):
            planned.append((target, f"{key}_{target}" if player == BOTH else key, key, options))
    names = [name for _, name, _, _ in planned]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"Invalid loss component name {name!r}: an entry with player: both already uses it")
    return planned


@contextmanager
def reported_under_user_keys(renames: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a ConfigError about ``loss.<instance>…`` as one about the user's ``loss.<key>…``."""
    try:
        yield
    except ConfigError as exc:
        message = str(exc)
        for name, key in renames.items():
            if name != key:
                message = message.replace(f"loss.{name}.", f"loss.{key}.").replace(f"loss.{name}:", f"loss.{key}:")
        raise ConfigError(message) from None


def check_applies(component: Any, key: str) -> None:
    """A player's term sees the player's weights, y_true and y_pred; nothing inside its forward pass."""
    needs = []
    if component.insert_after():
        needs.append("inserts layers into the network")
    if component.outputs_needed():
        needs.append("reads intermediate layer outputs")
    if needs:
        kind = type(component).registry_name
        raise ConfigError(f"Invalid loss component for a GAN: loss.{key} ({kind}) {' and '.join(needs)}; "
                          "a GAN player's components may read its weights, y_true and y_pred only")


def check_pack(generator: Any, discriminator: Any, pack: int) -> None:
    """The discriminator reads ``pack`` generated points side by side."""
    point, judged = int(generator.outputs[0].shape[-1]), int(discriminator.inputs[0].shape[-1])
    if judged != pack * point:
        raise invalid_value("model", f"a discriminator reading pack × the generator's output ({pack} × {point} "
                                     f"= {pack * point} values)", f"{judged} inputs")


@register_trainer("adversarial")
class AdversarialTrainer(Trainer):
    """Generator and discriminator, one step each per batch (see the module docstring)."""

    tasks = ("generation",)
    entry_keys = (PLAYER_KEY,)
    #: two optimizers on a packed, per-player step: not run on several replicas yet (each player's optimizer
    #: scales its loss under mixed_float16: :meth:`lossexp.training.gan_model.GANModel.compile`)
    places = False
    saved_class = "lossexp>GANModel"
    weightings = ("equal",)
    #: the built model's packing degree (set by :meth:`build`; :meth:`fit_arguments` packs the data)
    pack: int = 1

    def build(self, data: Any, network: Any = None, components: Optional[Sequence[Any]] = None) -> Any:
        from lossexp.losses.entries import build_components
        from lossexp.optimizers import build_optimizer
        from lossexp.training.gan_model import GANModel

        config = self.config
        players = network if network is not None else registry.build("model", config.model, data=data)
        if not isinstance(players, Players):
            if not (isinstance(players, tuple) and len(players) == 2):
                raise invalid_value("model", f"a builder returning (generator, discriminator) or Players for the "
                                    f"adversarial regime (model={config.model.name})", type(players).__name__)
            players = Players(*players)  # a plain GAN: no packing, alternating steps
        generator, discriminator, pack, updates = players
        check_pack(generator, discriminator, pack)
        self.pack = pack
        planned = instances(config.loss)
        by_player: Dict[str, List[Any]] = {player: [] for player in PLAYERS}
        with reported_under_user_keys({name: key for _, name, key, _ in planned}):
            for player, name, key, options in planned:
                [component] = build_components({name: options})
                check_applies(component, key)
                by_player[player].append(component)
            model = GANModel(generator, discriminator, by_player["generator"], by_player["discriminator"],
                             seed=config.trainer.seed, pack=pack, updates=updates, name=config.model.name)
        model.compile(generator_optimizer=build_optimizer(config.optimizer),
                      discriminator_optimizer=build_optimizer(config.optimizer),
                      steps_per_execution=config.trainer.execution_steps,
                      jit_compile=config.trainer.keras_jit_compile)
        if config.tracking.enabled and config.tracking.gradients:
            model.watch_gradients(config.tracking.gradients_every_n_steps, config.trainer.execution_steps)
        return model

    def splits(self, data: Any) -> Tuple[Any, Optional[Any]]:
        """Every example trains: a GAN has no validation split."""
        from lossexp.data import Part

        return Part(arrays=(data.joined_x, data.y), size=data.examples), None

    def fit_arguments(self, data: Any) -> Dict[str, Any]:
        """The real points, packed into rows of ``pack`` points when the model packs (after :meth:`build`)."""
        import numpy as np

        from lossexp.training.packing import packed_rows

        rows = packed_rows(data.joined_x, self.pack, np.random.default_rng(self.config.trainer.seed))
        return self.array_fit_arguments((rows,))

    def serving_network(self, model: Any) -> Any:
        """The generator: noise in, samples out."""
        return model.generator

    def callbacks(self, model: Any, data: Any) -> List[Any]:
        self.scorer = data.scorer
        if data.scorer is None:
            return self.ordering_callbacks()
        from lossexp.tracking.samples import SampleScores

        return [SampleScores(data.scorer, model.latent_dim, self.config.trainer.seed), *self.ordering_callbacks()]

    def artifacts(self, callbacks: List[Any], output_dir: Path, run_name: str) -> List[Path]:
        from lossexp.tracking.samples import SampleScores

        return [c.scorer.plot(c.samples, output_dir / "plots" / f"{c.scorer.name}.png", run_name)
                for c in callbacks if isinstance(c, SampleScores) and c.samples is not None]

    def fallback_objective(self, history: Dict[str, List[float]]) -> Optional[float]:
        """What the data's scorer says (the ring: modes missed), else the generator's loss."""
        if getattr(self, "scorer", None) is not None:
            return self.scorer.objective(history)
        return float(history["loss/generator"][-1]) if "loss/generator" in history else None
