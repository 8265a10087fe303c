"""From a validated ``model=gan`` config and the ring data to a compiled :class:`GANModel`.

Each ``loss:`` entry may carry ``player: generator | discriminator | both`` (default ``both``),
handled here like ``kind:``: ``both`` builds one instance per player, named ``<key>_generator``
and ``<key>_discriminator`` (Salimans et al. apply historical averaging to each player's cost);
a single player keeps the entry's key as its name. A GAN player's component may read the
player's weights, ``y_true`` and ``y_pred`` only: components that insert layers into a network
or read intermediate outputs are rejected with one line. Errors name the user's key
(``loss.hist_avg.decay``), not the per-player instance.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Tuple

from lossexp.config import LossexpConfig
from lossexp.data import Dataset
from lossexp.errors import ConfigError, invalid_value
from lossexp.losses.base import LossComponent
from lossexp.losses.registry import KIND_KEY, PLAYER_KEY, build_components
from lossexp.models import gan
from lossexp.training.assemble import make_optimizer
from lossexp.training.gan_model import PLAYERS, GANModel

BOTH = "both"
PLAYER_CHOICES = ("generator", "discriminator", BOTH)


def instances(loss_cfg: Mapping[str, Any]) -> List[Tuple[str, str, str, Dict[str, Any]]]:
    """``[(player, instance name, the user's key, options with kind)]`` for every ``loss:`` entry."""
    planned = []
    for key, options in loss_cfg.items():
        if key in PLAYERS:
            raise ConfigError(f"Invalid loss component name {key!r} on model=gan: {', '.join(PLAYERS)} are reserved")
        options = dict(options or {})
        player = options.pop(PLAYER_KEY, BOTH)
        if player not in PLAYER_CHOICES:
            raise invalid_value(f"loss.{key}.{PLAYER_KEY}", "one of " + ", ".join(PLAYER_CHOICES), player)
        options.setdefault(KIND_KEY, key)
        players = PLAYERS if player == BOTH else (player,)
        for target in players:
            name = f"{key}_{target}" if player == BOTH else key
            planned.append((target, name, key, options))
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


def check_applies(component: LossComponent, key: str) -> None:
    """A GAN player's term sees the player's weights, y_true and y_pred; nothing inside its forward pass."""
    needs = []
    if component.insert_after():
        needs.append("inserts layers into the network")
    if component.outputs_needed():
        needs.append("reads intermediate layer outputs")
    if needs:
        kind = type(component).registry_name
        raise ConfigError(f"Invalid loss component for model=gan: loss.{key} ({kind}) {' and '.join(needs)}; "
                          "a GAN player's components may read its weights, y_true and y_pred only")


def build_gan(cfg: LossexpConfig, data: Dataset) -> GANModel:
    """Both players, their components and optimizers (two instances of ``optimizer:``), compiled.

    Raises :class:`ConfigError` (before any training) for bad component options, players or layers.
    """
    players = gan.build(cfg.model, data)
    planned = instances(cfg.loss)
    by_player: Dict[str, List[LossComponent]] = {player: [] for player in PLAYERS}
    with reported_under_user_keys({name: key for _, name, key, _ in planned}):
        for player, name, key, options in planned:
            [component] = build_components({name: options})
            check_applies(component, key)
            by_player[player].append(component)
        model = GANModel(players.generator, players.discriminator, by_player["generator"],
                         by_player["discriminator"], seed=cfg.trainer.seed, name="gan")
    model.compile(generator_optimizer=make_optimizer(cfg.optimizer),
                  discriminator_optimizer=make_optimizer(cfg.optimizer),
                  steps_per_execution=cfg.trainer.execution_steps)
    return model
