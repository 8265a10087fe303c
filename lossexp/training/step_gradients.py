"""Gradient diagnostics taken inside a training step of its own: which part moves each player's update.

A model that writes its own ``train_step`` — the GAN's two players (:mod:`lossexp.training.gan_model`),
a regime of the user's (a WGAN-GP's critic and generator) — has *players*: sets of weights, each updated
by one optimizer from a loss that is a sum of *parts* (a player's adversarial loss, each component's
weighted contribution). Every ``tracking.gradients_every_n_steps`` steps (the steps s with
(s − 1) mod N = 0: 1, N + 1, …, as the supervised diagnostics), :meth:`StepGradients.measure`, called in
the step between the player's gradients and their update, takes on that step's batch, noise and tape:

* ``weight_grad/<player>/<part>/norm`` = ‖gₜ‖, the part's gradient norm on the player's weights;
* ``weight_grad/<player>/<part>/cos_update`` = gₜ·u/(‖gₜ‖‖u‖), its cosine with the gradient ``u`` the
  player's optimizer is given (0 when either is 0);
* ``weight_grad/<player>/norm`` = ‖u‖.

It runs in the compiled step (under ``steps_per_execution`` > 1 too) as a ``tf.cond`` that computes
nothing on the other steps: one backward pass per part on a sampled step, from the step's own tape
(which must be ``persistent``); or, with :meth:`StepGradients.branches` (the GAN's, for XLA), the
whole step is the cond's branch. Each part is differentiated times the optimizer's loss scale, as
the update is, and divided out (``mixed_float16``); a sample that overflows at that scale is not kept
and the next step is sampled instead (the optimizer skips that update and halves its scale), for that
player only (the other's sample was kept at 2 and 3 too, off its schedule, when one retried). It assigns
nothing the step reads: a run with diagnostics trains exactly as one without.

The step is the batch's global step, as the run recorder counts it (:mod:`lossexp.training.step_count`):
under :meth:`StepGradients.branches` a batch count of its own, set at each epoch's start by the
:class:`Reader` to the recorder's step and counted up in the step. The optimizer's count leaves out the
updates a loss scale skipped: with 2 of a GAN's first 3 updates skipped (``mixed_float16``, every 3
steps), its samples carried steps 1 and 4 where they were taken at the batches 3 and 6, and step 7's was
not taken. Outside ``branches`` (a regime's own step calling :meth:`StepGradients.measure` alone) the
step is the epoch's start plus the player's calls of ``measure`` since, one a batch, unless the step
passes ``step`` (it was the optimizer's count + 1: with the batches 1, 2 and 4 of 7 skipped at a scale of
2¹²⁷, the samples taken at the batches 3 and 7 carried steps 1 and 4, and step 4's was not taken).

The values stay in variables of their own (not the model's: a checkpoint and a saved model are the
same with or without diagnostics), a slot per sample a compiled call can take (with one slot, a call of
1,000 steps sampled every 100 kept its last sample of 10); :class:`Reader`, a callback the runner adds
(:func:`lossexp.training.trainer.regime_callbacks`), reads them after the compiled call that reached a
sampled step (a variable read from Python costs 0.1–0.25 ms inside ``fit``), for the run recorder to
log at the steps they were taken at.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import keras

from lossexp import metric_names
from lossexp.training.step_count import IntervalCallback, batches_trained

Sample = Tuple[int, Dict[str, float]]


def statistic_names(player: str, parts: Sequence[str]) -> List[str]:
    """The metric names of one player, in the order :meth:`StepGradients.measure` computes them."""
    names = [metric_names.player_gradient(player, part, stat) for part in parts for stat in metric_names.STEP_GRAD_STATS]
    return names + [metric_names.player_update_norm(player)]


def next_sample(last: int, every_n_steps: int) -> int:
    """The first step after ``last`` that is sampled: (s − 1) mod N = 0."""
    return ((last - 1) // every_n_steps + 1) * every_n_steps + 1


class StepGradients:
    """The in-step diagnostics of some players, each with its parts by name (see the module docstring)."""

    def __init__(self, players: Mapping[str, Sequence[str]], every_n_steps: int, steps_per_call: int = 1) -> None:
        self.players = {player: list(parts) for player, parts in players.items()}
        self.every_n_steps = int(every_n_steps)
        self.names = {player: statistic_names(player, parts) for player, parts in self.players.items()}
        #: samples one call can take (one more after a sample that overflowed)
        self.slots = int(steps_per_call) // self.every_n_steps + 2
        # not a model's variables (kept out of its checkpoint and saved file); written only by the step
        self._values = {p: keras.Variable([[0.0] * len(n)] * self.slots, dtype="float32", trainable=False,
                                          name=f"gradients_{p}") for p, n in self.names.items()}
        self._steps = {p: keras.Variable([0] * self.slots, dtype="int64", trainable=False, name=f"gradients_steps_{p}")
                       for p in self.players}
        self._taken = {p: keras.Variable(0, dtype="int64", trainable=False, name=f"gradients_taken_{p}")
                       for p in self.players}
        self._retry = {p: keras.Variable(False, dtype="bool", trainable=False, name=f"gradients_retry_{p}")
                       for p in self.players}
        #: the batches trained before the step (:meth:`branches` counts them; the Reader sets it each epoch)
        self._batches = keras.Variable(0, dtype="int64", trainable=False, name="gradients_batches")
        #: outside :meth:`branches`: each player's :meth:`measure` calls since ``_batches`` was set, one a batch
        self._calls = {p: keras.Variable(0, dtype="int64", trainable=False, name=f"gradients_calls_{p}")
                       for p in self.players}
        self._step: Any = None  # while :meth:`branches` traces the step: its batch's step
        self._read = {p: 0 for p in self.players}
        self._pending: List[Sample] = []
        self._sampling = False  # tracing the sampled branch of :meth:`branches`

    @classmethod
    def for_config(cls, config: Any, players: Mapping[str, Sequence[str]]) -> Optional["StepGradients"]:
        """The diagnostics a run of ``config`` takes (``tracking.gradients``), or None."""
        tracking = config.tracking
        if not (tracking.enabled and tracking.gradients):
            return None
        return cls(players, tracking.gradients_every_n_steps, config.trainer.execution_steps)

    # -- in the compiled step -------------------------------------------------------------
    def measure(self, player: str, tape: Any, parts: Mapping[str, Any], variables: Sequence[Any],
                update: Sequence[Any], optimizer: Any, step: Any = None) -> None:
        """Sample ``player``'s statistics if this step is due (graph ops; call it before the update is applied).

        ``tape``: the persistent tape that recorded ``parts`` (name → the part's loss, as the update's
        loss sums them; every name the player was given); ``variables`` and ``update``: what the
        optimizer is given, the gradients as computed from its scaled loss; ``step``: this batch's
        global step, by default the one :meth:`branches` counted, outside it the epoch's first step plus
        this player's calls since (one a batch: give ``step`` when a player is measured more than once a
        batch)."""
        import tensorflow as tf

        from lossexp.training import task_gradients
        from lossexp.training.devices import all_replicas, replicas

        if step is None:
            step = self._step if self._step is not None else self._batches + self._calls[player].assign_add(1)
        step = tf.cast(step, tf.int64)
        missing = [name for name in self.players[player] if name not in parts]
        if missing:
            raise ValueError(f"StepGradients.measure({player!r}): no part named {', '.join(missing)} "
                             f"(its parts: {', '.join(self.players[player])})")
        losses = [parts[name] for name in self.players[player]]
        values_var, steps_var = self._values[player], self._steps[player]
        taken_var, retry_var = self._taken[player], self._retry[player]
        # this player's due: under branches() the step is sampled when any player is (another's retry)
        due = tf.logical_or(tf.equal((step - 1) % self.every_n_steps, 0), retry_var)

        def sample() -> Any:
            scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
            scaled, _ = task_gradients.per_task(tape, losses, variables, scale / replicas())
            applied = all_replicas([tf.zeros(v.shape, tf.float32) if g is None else tf.cast(g, tf.float32)
                                    for g, v in zip(update, variables)])
            # unscaled before their products: at a scale of 2**127 finite gradients' squares overflowed
            unscaled = [[g / scale for g in gradients] for gradients in [*scaled, applied]]
            gram = task_gradients.gramians(unscaled, {None: range(len(variables))})[None]
            norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
            k = len(losses)
            products = norms[:k] * norms[k]
            cosines = tf.where(products > 0.0, gram[:k, k] / tf.where(products > 0.0, products, 1.0), 0.0)
            values = tf.reshape(tf.stack([norms[:k], cosines], axis=1), (-1,))
            values = tf.concat([values, norms[k:]], axis=0)
            finite = tf.logical_or(tf.reduce_all(tf.math.is_finite(values)), scale <= 1.0)
            kept = tf.logical_and(due, finite)
            slot = tf.reshape(taken_var % self.slots, (1, 1))
            values_var.assign(tf.where(kept, tf.tensor_scatter_nd_update(values_var, slot, values[None]), values_var))
            steps_var.assign(tf.where(kept, tf.tensor_scatter_nd_update(steps_var, slot, step[None]), steps_var))
            taken_var.assign_add(tf.cast(kept, tf.int64))
            retry_var.assign(tf.logical_and(due, tf.logical_not(finite)))
            return kept

        if self._sampling:
            sample()
        else:
            tf.cond(due, sample, lambda: tf.constant(False))

    def branches(self, train_step: Callable[[bool], Any], step: Any = None) -> Any:
        """``train_step(True)`` — the step with its :meth:`measure` calls — on a sampled step, else
        ``train_step(False)``, the plain step (graph ops: a ``tf.cond``). ``step``: this batch's global
        step, by default the batches counted (see the module docstring), which the :meth:`measure` calls
        in ``train_step`` take as theirs.

        Under XLA a :meth:`measure` in the plain step costs every step: its conditional is passed the
        forward pass's tensors (experiment=ring_pacgan loss=hist_avg: 17.5 against 15.5 ms of CPU a step
        with one sample every 100 steps); here the other steps run the plain step's own graph."""
        import tensorflow as tf

        step = self._batches.assign_add(1) if step is None else tf.cast(step, tf.int64)
        due = tf.reduce_any(tf.stack([tf.equal((step - 1) % self.every_n_steps, 0),
                                      *(tf.convert_to_tensor(r) for r in self._retry.values())]))

        def sampled() -> Any:
            self._sampling, self._step = True, step
            try:
                return train_step(True)
            finally:
                self._sampling, self._step = False, None

        return tf.cond(due, sampled, lambda: train_step(False))

    # -- from Python, after the compiled calls -----------------------------------------------
    def begin(self, trained: int) -> None:
        """A fit starts after ``trained`` batches (a resumed run's: the steps it continues from)."""
        self._read = {p: int(trained) for p in self.players}
        self.count_from(trained)

    def retrying(self) -> List[str]:
        """The players whose due sample overflowed, to be taken at the next step (a checkpoint keeps them: a
        run resumed without them skipped the sample the run that never stopped took)."""
        return [player for player, flag in self._retry.items() if bool(keras.ops.convert_to_numpy(flag))]

    def retry(self, players: Sequence[str]) -> None:
        """Take ``players``' samples at the next step (:meth:`retrying` of the run continued)."""
        for player in players:
            self._retry[player].assign(True)

    def count_from(self, trained: int) -> None:
        """The next batch's step is ``trained`` + 1 (at an epoch's start: the recorder's step)."""
        self._batches.assign(int(trained))
        for calls in self._calls.values():
            calls.assign(0)

    def collect(self, step: int) -> None:
        """After a compiled call that ended at global ``step``: keep what was sampled since the last collect."""
        by_step: Dict[int, Dict[str, float]] = {}
        for player in self.players:
            if step < next_sample(self._read[player], self.every_n_steps):
                continue
            steps = keras.ops.convert_to_numpy(self._steps[player])
            new = [slot for slot in range(self.slots) if steps[slot] > self._read[player]]
            if not new:
                continue  # not yet taken (a sample that overflowed is taken at the next step)
            self._read[player] = int(max(steps[slot] for slot in new))
            values = keras.ops.convert_to_numpy(self._values[player])
            for slot in new:
                by_step.setdefault(int(steps[slot]), {}).update(zip(self.names[player], (float(v) for v in values[slot])))
        self._pending += sorted(by_step.items())

    def read(self) -> List[Sample]:
        """Every (step, {name: value}) collected since the last read."""
        pending, self._pending = self._pending, []
        return pending


class Reader(IntervalCallback):
    """Collects a model's :class:`StepGradients` after each compiled call (before the run recorder reads them)."""

    def __init__(self, gradients: StepGradients) -> None:
        super().__init__(gradients.every_n_steps)
        self.gradients = gradients

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        super().on_train_begin(logs)
        self._begun = False

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """The batch count starts at the recorder's step: the epoch's start when Keras knows the epochs'
        batches (past a loss scale's skipped updates), else the optimizer's count, at the fit's start."""
        super().on_epoch_begin(epoch, logs)
        if self._epoch_batches():
            start = self._epoch_start_step
        elif not self._begun:
            start = int(keras.ops.convert_to_numpy(batches_trained(self.model.optimizer)))
        else:
            return
        if self._begun:
            self.gradients.count_from(start)
        else:
            self.gradients.begin(start)
            self._begun = True

    def on_steps_done(self, previous_step: int, logs: Dict[str, Any]) -> None:
        self.gradients.collect(self.step)


def readers(model: Any) -> List[Any]:
    """The :class:`Reader` of ``model.step_gradients`` (none when the model has none)."""
    gradients = getattr(model, "step_gradients", None)
    return [Reader(gradients)] if isinstance(gradients, StepGradients) else []
