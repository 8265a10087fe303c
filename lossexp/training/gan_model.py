"""A GAN as one Keras model: two players, two optimizers, loss components per player.

``GANModel.train_step`` takes one step of each player on every batch of real points
(Goodfellow et al. 2014, with the non-saturating generator loss):

* discriminator: ``mean softplus(−D(x)) + mean softplus(D(G(z)))``, i.e. ``−log D(x) − log(1 − D(G(z)))``;
* generator:     ``mean softplus(−D(G(z)))``, i.e. ``−log D(G(z))``;

each plus ``Σ weight·term`` of the components that target that player. A component sees its
player as the :class:`~lossexp.losses.base.LossContext`: ``network`` is the player's network,
``step`` the player's own step (its optimizer's count + 1), ``y_pred`` what the player outputs
(generated points for the generator, packed as the real rows; ``D``'s probabilities on the real
then fake rows for the discriminator) and ``y_true`` what it should output (the real rows; labels 1
then 0). Each player's optimizer updates that player's weights and its components' trainable
weights only.

``updates: alternating`` steps the discriminator first, then the generator on fresh noise against
the updated discriminator; ``simultaneous`` computes both players' gradients from one forward pass
(one noise draw, the same ``D(G(z))``) and applies them together, as PacGAN's and ALI's released
code do (``ali_algorithm``: one gradient step on both players' parameters).

Packing (``pack: m``, Lin et al. 2018): each row of a real batch holds m real points side by side
(the regime packs the data set, :mod:`lossexp.training.packing`), and ``G(z)`` stands for m
generator calls on independent noise batches concatenated the same way, so the discriminator
judges m samples at once. Each call normalises with its own batch statistics (batch
normalisation in the generator), as PacGAN's generator applied to each of its m noise batches.
A batch of B rows is B·m real and B·m generated points.

Metrics (epoch running means, weighted by batch size): ``loss/<player>`` (what that player's
optimizer minimises), ``loss/<player>/adversarial`` (its GAN loss alone), and per component
``term/<c>`` and ``loss/<c>``. With :meth:`GANModel.watch_gradients`, each player's parts (``adversarial``,
each of its components) have their gradient norms and cosines with the player's update sampled in the
step (:mod:`lossexp.training.step_gradients`). ``call(noise)`` returns generated points (one per noise row, unpacked).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import keras
from keras import ops

from lossexp import metric_names
from lossexp.losses.base import LossComponent, LossContext, attach
from lossexp.losses.composition import Composition
from lossexp.models.gan import UPDATES
from lossexp.training import step_values
from lossexp.training.composed_model import RunningMeans
from lossexp.training.devices import loss_scaled, replicas
from lossexp.training.weight_decay import spare

PLAYERS = ("discriminator", "generator")  # in the order of their steps
#: the part of a player's loss that is its GAN loss (``loss/<player>/adversarial``)
ADVERSARIAL = "adversarial"


@keras.saving.register_keras_serializable(package="lossexp")
class GANModel(keras.Model):
    """Generator and discriminator trained against each other, with per-player loss components."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model,
                 generator_components: Sequence[LossComponent] = (),
                 discriminator_components: Sequence[LossComponent] = (), seed: int = 0, pack: int = 1,
                 updates: str = "alternating", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if updates not in UPDATES:
            raise ValueError(f"updates must be one of {', '.join(UPDATES)}, got {updates!r}")
        self.generator = generator
        self.discriminator = discriminator
        self.generator_components = list(generator_components)
        self.discriminator_components = list(discriminator_components)
        self.seed = seed
        self.pack = pack
        self.updates = updates
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.noise = keras.random.SeedGenerator(seed, name="noise")
        # not attributes Keras tracks: the components are, through the *_components lists
        object.__setattr__(self, "compositions", {p: Composition(self.player_components(p)) for p in PLAYERS})
        for player in PLAYERS:
            for component in self.player_components(player):
                attach(component, self.player_network(player))
        self.breakdown = RunningMeans(self.metric_names(), name="breakdown")
        object.__setattr__(self, "step_gradients", None)  # see watch_gradients
        self.built = True  # both networks are built functional models; components own their state

    # -- the players ----------------------------------------------------------------------
    def player_network(self, player: str) -> keras.Model:
        return getattr(self, player)

    def player_components(self, player: str) -> List[LossComponent]:
        return getattr(self, f"{player}_components")

    def player_optimizer(self, player: str) -> keras.optimizers.Optimizer:
        return getattr(self, f"{player}_optimizer")

    @property
    def components(self) -> List[LossComponent]:
        """Every component of both players (what the divergence watch looks at)."""
        return [c for player in PLAYERS for c in self.player_components(player)]

    def player_variables(self, player: str) -> List[keras.Variable]:
        """What ``player``'s optimizer updates: its network's and its components' trainable weights.

        Each variable once: a component that kept the network's weights in a tracked attribute
        would list them among its own, and a variable listed twice would be updated twice.
        """
        variables = {}
        for w in self.player_network(player).trainable_weights:
            variables.setdefault(id(w), w)
        for component in self.player_components(player):
            for w in component.trainable_weights:
                variables.setdefault(id(w), w)
        return list(variables.values())

    def metric_names(self) -> List[str]:
        names = []
        for player in PLAYERS:
            names += [f"loss/{player}", f"loss/{player}/adversarial", *self.compositions[player].metric_names()]
        return names

    def parts(self, player: str) -> List[str]:
        """The parts of ``player``'s loss: ``adversarial``, then each of its components."""
        return [ADVERSARIAL, *(c.name for c in self.player_components(player))]

    def watch_gradients(self, every_n_steps: int, steps_per_call: int = 1) -> None:
        """Sample each player's gradient diagnostics in the step every ``every_n_steps`` steps (before ``fit``;
        ``steps_per_call``: its ``steps_per_execution``)."""
        from lossexp.training.step_gradients import StepGradients

        object.__setattr__(self, "step_gradients", StepGradients({p: self.parts(p) for p in PLAYERS}, every_n_steps,
                                                                 steps_per_call))

    # -- compile, forward -------------------------------------------------------------------
    def compile(self, generator_optimizer: keras.optimizers.Optimizer,
                discriminator_optimizer: keras.optimizers.Optimizer, **kwargs: Any) -> None:
        """One optimizer per player, each built on that player's variables only.

        Keras' own ``model.optimizer`` is the discriminator's (its step count is the model's). Each player's
        is wrapped in Keras' ``LossScaleOptimizer`` when its network computes in float16
        (:func:`lossexp.training.devices.loss_scaled`; ``trainer.precision=mixed_float16``): Keras' ``compile``
        wraps ``model.optimizer`` alone, and the players' steps would have scaled their losses by 1 (the
        float16 gradients underflowing) through the unwrapped ones. A weight decay spares the components'
        trained weights (:func:`lossexp.training.weight_decay.spare`).
        """
        super().compile(optimizer=loss_scaled(self.discriminator, discriminator_optimizer), **kwargs)
        self.generator_optimizer = loss_scaled(self.generator, generator_optimizer)
        self.discriminator_optimizer = self.optimizer  # as Keras' compile left it (wrapped under the model's policy)
        for player in PLAYERS:
            own = [w for component in self.player_components(player) for w in component.trainable_weights]
            spare(self.player_optimizer(player), own)  # the loss's trained weights: not the network's decay
            self.player_optimizer(player).build(self.player_variables(player))

    def get_compile_config(self) -> Dict[str, Any]:
        if not self.compiled:
            return {}
        return {f"{player}_optimizer": keras.saving.serialize_keras_object(self.player_optimizer(player))
                for player in PLAYERS}

    def compile_from_config(self, config: Dict[str, Any]) -> None:
        self.compile(**{key: keras.saving.deserialize_keras_object(value) for key, value in config.items()})

    def call(self, noise: Any, training: bool = False) -> Any:
        return self.generator(noise, training=training)

    # -- one training step ----------------------------------------------------------------
    def objective(self, player: str, adversarial: Any, y_true: Any, y_pred: Any
                  ) -> Tuple[Any, Dict[str, Any], List, Dict[str, Any]]:
        """(the player's total loss, each component's unweighted term, values for the breakdown, the
        total's parts by name: :meth:`parts`)."""
        step = ops.cast(self.player_optimizer(player).iterations, "int64") + 1  # exact past 2**24 steps
        context = LossContext(y_true=y_true, y_pred=y_pred, network=self.player_network(player), training=True,
                              step=ops.cast(step, "float32"), step_count=step)
        composed = self.compositions[player](context, adversarial)
        parts = {ADVERSARIAL: adversarial, **composed.contributions}
        return composed.total, composed.terms, [composed.total, adversarial, *composed.values], parts

    def differentiated(self, player: str, total: Any) -> Any:
        """What ``player``'s gradients come from: its total over the replicas, loss-scaled (inside the tape)."""
        return self.player_optimizer(player).scale_loss(total / replicas() if replicas() > 1 else total)

    def gradients(self, player: str, tape: Any, scaled: Any, total: Any) -> List[Any]:
        """``∂scaled/∂`` the player's variables (``scaled``: :meth:`differentiated` of ``total``); they
        wait for the loss, as in :meth:`ComposedModel.train_step`, so a trainable coefficient is read
        before its own update."""
        import tensorflow as tf

        gradients = tape.gradient(scaled, self.player_variables(player))
        with tf.control_dependencies([total]):
            return [None if g is None else tf.identity(g) for g in gradients]

    def apply(self, player: str, gradients: List[Any], terms: Dict[str, Any], tape: Any, parts: Dict[str, Any],
              watched: bool) -> None:
        """Apply ``player``'s optimizer to its own variables; then the components' after-step updates.
        Before, when ``watched``, the gradient diagnostics of the ``parts`` that ``tape`` recorded."""
        if watched:
            self.step_gradients.measure(player, tape, parts, self.player_variables(player), gradients,
                                        self.player_optimizer(player))
        self.player_optimizer(player).apply_gradients(zip(gradients, self.player_variables(player)))
        self.compositions[player].after_step(terms)

    def generate(self, rows: Any, training: bool) -> Any:
        """``rows`` generated rows: ``pack`` generator calls on fresh noise, side by side."""
        samples = [ops.cast(self.generator(keras.random.normal((rows, self.latent_dim), seed=self.noise),
                                           training=training), "float32")  # mixed_float16: computed in float16
                   for _ in range(self.pack)]
        return samples[0] if self.pack == 1 else ops.concatenate(samples, axis=-1)

    def discriminator_objective(self, real: Any, fake: Any) -> Tuple[Any, Dict[str, Any], List, Dict[str, Any], Any]:
        """The discriminator's (total, terms, breakdown values, parts) on ``real`` and ``fake`` rows, and
        its logits on the fake rows (for a simultaneous generator step)."""
        rows = ops.shape(real)[0]
        logits = ops.cast(self.discriminator(ops.concatenate([real, fake], axis=0), training=True), "float32")
        logits_real, logits_fake = logits[:rows], logits[rows:]
        adversarial = ops.mean(ops.softplus(-logits_real)) + ops.mean(ops.softplus(logits_fake))
        labels = ops.concatenate([ops.ones_like(logits_real), ops.zeros_like(logits_fake)], axis=0)
        return (*self.objective("discriminator", adversarial, labels, ops.sigmoid(logits)), logits_fake)

    def train_step(self, data: Any) -> Dict[str, Any]:
        if self.step_gradients is None:
            return self.players_step(data, watched=False)
        return self.step_gradients.branches(lambda watched: self.players_step(data, watched))  # the batch's step

    def players_step(self, data: Any, watched: bool) -> Dict[str, Any]:
        """Both players' steps on one batch; ``watched``: with their gradient diagnostics."""
        import tensorflow as tf

        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        real = ops.cast(real, "float32")
        rows = ops.shape(real)[0]
        if self.updates == "simultaneous":
            with tf.GradientTape(persistent=True) as tape:
                fake = self.generate(rows, training=True)
                d_total, d_terms, d_values, d_parts, logits_fake = self.discriminator_objective(real, fake)
                adversarial = ops.mean(ops.softplus(-logits_fake))
                g_total, g_terms, g_values, g_parts = self.objective("generator", adversarial, real, fake)
                d_scaled = self.differentiated("discriminator", d_total)
                g_scaled = self.differentiated("generator", g_total)
            d_gradients = self.gradients("discriminator", tape, d_scaled, d_total)
            g_gradients = self.gradients("generator", tape, g_scaled, g_total)
            self.apply("discriminator", d_gradients, d_terms, tape, d_parts, watched)
            self.apply("generator", g_gradients, g_terms, tape, g_parts, watched)
            del tape
        else:
            fake = self.generate(rows, training=True)
            with tf.GradientTape(persistent=watched) as tape:
                d_total, d_terms, d_values, d_parts, _ = self.discriminator_objective(real, fake)
                d_scaled = self.differentiated("discriminator", d_total)
            self.apply("discriminator", self.gradients("discriminator", tape, d_scaled, d_total), d_terms, tape, d_parts, watched)
            with tf.GradientTape(persistent=watched) as tape:
                fake = self.generate(rows, training=True)
                adversarial = ops.mean(ops.softplus(-ops.cast(self.discriminator(fake, training=True), "float32")))
                g_total, g_terms, g_values, g_parts = self.objective("generator", adversarial, real, fake)
                g_scaled = self.differentiated("generator", g_total)
            self.apply("generator", self.gradients("generator", tape, g_scaled, g_total), g_terms, tape, g_parts, watched)

        self.breakdown.update_state(d_values + g_values, sample_weight=ops.cast(rows, "float32"))
        # each player's rate after its update and the constant weights, carried out with the logs
        carried = {name: ops.convert_to_tensor(rate) for name, rate in self.learning_rates().items()}
        carried.update({step_values.constant_weight(c.name): ops.convert_to_tensor(c.weighting.loss_weight)
                        for c in self.components if c.weighting.spec.kind == "constant"})
        return step_values.with_values(self.breakdown.result(), carried)

    def make_train_function(self, force: bool = False) -> Any:
        """Keras' train function, the values the step carries taken out of its logs
        (:mod:`lossexp.training.step_values`): the recorder reads the players' rates without an op."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force)
        self.train_function = step_values.carried(self, self.train_function)
        return self.train_function

    def tracked_weights(self) -> Dict[str, Any]:
        """``weight/<c>`` and ``weight/coef/<c>`` of every component whose weight is not constant."""
        return {key: value for player in PLAYERS for key, value in self.compositions[player].tracked_weights().items()}

    def learning_rates(self) -> Dict[str, Any]:
        """``learning_rate/<player>``: each player's optimizer's rate now (a schedule's at its own updates)."""
        return {metric_names.learning_rate(player): self.player_optimizer(player).learning_rate for player in PLAYERS}

    # -- serialisation ----------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        config = {"name": self.name, "seed": self.seed, "pack": self.pack, "updates": self.updates}
        for player in PLAYERS:
            config[player] = keras.saving.serialize_keras_object(self.player_network(player))
            config[f"{player}_components"] = [keras.saving.serialize_keras_object(c)
                                              for c in self.player_components(player)]
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> "GANModel":
        from lossexp.keras_objects import register_keras_objects

        register_keras_objects()  # its components' classes, wherever Keras was first imported from
        config = dict(config)
        for player in PLAYERS:
            config[player] = keras.saving.deserialize_keras_object(config[player], custom_objects=custom_objects)
            config[f"{player}_components"] = [keras.saving.deserialize_keras_object(c, custom_objects=custom_objects)
                                              for c in config[f"{player}_components"]]
        return cls(**config)
