"""lossexp against plain Keras at research sizes, with the same ``steps_per_execution``.

Every variant trains the same freshly built network on the same synthetic data with Adam and
``steps_per_execution = 10`` (lossexp's default: one logging interval), variants interleaved
within each repeat. A fit is timed by its mean epoch over epochs 2..E (epoch 1 includes tracing;
the mean keeps every periodic cost — drift, gradient diagnostics, the epoch's metric write — in
proportion). A ratio is of the two variants' fastest fits (``of_fastest``: this shared 2-core
machine only ever adds time, so the fastest repeat is the least disturbed); the median and range
of the per-repeat ratios are kept beside it.

* ``plain``         ``keras.Model.fit`` of the network (sparse cross-entropy, accuracy);
* ``plain_as_written`` the same with Keras' default ``steps_per_execution = 1`` (how one usually
                    writes it) — for the *as-written* ratio, reported beside the headline;
* ``default``       ``lossexp.fit`` with lossexp's default config: ``hist_avg + activity``, drift
                    statistics and tracking into a real MLflow SQLite store;
* ``none_drift`` / ``none``  ``loss=none`` with drift statistics on / off (tracking on): the cost of drift;
* ``<term>``        one weight-space term (hist_avg in each mode, cross_layer, coef on kernel norms),
                    drift and tracking off, against ``ref_<term>``: the best hand-written TensorFlow
                    step for the same maths (the gradient added per variable, the state updated in
                    the same pass, no concatenation), written here without lossexp;
* ``hand_written``  the default config's maths written by hand (``ref_default``: hist_avg's mean
                    mode as ``ref_hist_avg_mean``, the activity penalty on ``hidden_1`` through the
                    tape), without lossexp or tracking: what the maths costs over ``plain``, so the
                    headline splits into that and lossexp's own share (``default / hand_written``);
* ``growth_<n>``    n components at the 1M MLP, drift and tracking off: a mix of weight-space terms
                    and taps (``GROWTH``), and n activity taps alone (``GROWTH_TAPS``: lossexp's
                    composition with little maths).

The *profile* section says where the headline's time goes, by adding lossexp's parts one at a
time (:data:`PROFILE`, interleaved; MLPs of 10k and 1M parameters, batch 32): the maths by hand,
then lossexp's default components without tracking, then tracking into MLflow (metrics every
``log_every_n_steps``), then drift statistics, then gradient diagnostics (= ``default``), with
more repeats (:data:`PROFILE_REPEATS`). Each part's cost per training step is the median over
repeats of its variant's epoch minus the one before it, the two timed side by side in one repeat.

Networks: MLPs of about 10k, 100k, 1M and 10M parameters on 256 features, and a ResNet of 2.8M
parameters on 32×32×3 images; 10 classes; batch 32 and 256.
"""
from __future__ import annotations

import datetime
import statistics
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.common import epoch_timer, ratio_spread, spread

FEATURES, CLASSES, EXECUTION = 256, 10, 10
MLP_WIDTHS = {"mlp_10k": [37], "mlp_100k": [256, 128], "mlp_1M": [1024, 768], "mlp_10M": [2560, 2560, 1024]}
NETWORKS = (*MLP_WIDTHS, "resnet_2M")
BATCHES = (32, 256)
DEFAULT_LOSS = ["hist_avg", "activity"]
#: the weight-space terms of goal 3, as lossexp loss entries
TERMS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "hist_avg_mean": ("hist_avg", {"mode": "mean"}),
    "hist_avg_ema": ("hist_avg", {"mode": "ema"}),
    "hist_avg_previous": ("hist_avg", {"mode": "previous"}),
    "cross_layer": ("cross_layer", {"layers": ["hidden_1", "hidden_2"], "norm": "fro"}),
    "coef": ("coef", {"layers": ["hidden_1", "hidden_2"]}),
}
GROWTH = {
    1: [("hist_avg", {})],
    3: [("hist_avg", {}), ("activity", {}), ("coef", {})],
    5: [("hist_avg", {}), ("activity", {}), ("coef", {}), ("cross_layer", {}),
        ("hist_avg_ema", {"kind": "hist_avg", "mode": "ema"})],
    10: [("hist_avg", {}), ("activity", {}), ("coef", {}), ("cross_layer", {}),
         ("hist_avg_ema", {"kind": "hist_avg", "mode": "ema"}),
         ("hist_avg_prev", {"kind": "hist_avg", "mode": "previous", "distance": "mean_abs"}),
         ("activity_2", {"kind": "activity", "layers": ["hidden_2"]}),
         ("cross_layer_l1", {"kind": "cross_layer", "norm": "l1", "layers": ["hidden_2"]}),
         ("coef_mean", {"kind": "coef", "penalty": "prediction_mean"}),
         ("cross_layer_l2", {"kind": "cross_layer", "norm": "l2", "layers": ["output"]})],
}
#: growth in lossexp's composition alone: n activity penalties (one pass-through tap each, over the
#: 1M MLP's three layers, l2 and l1), whose maths is cheap next to the network's, unlike the
#: weight-space terms of GROWTH that each read every weight
ACTIVITY_LAYERS = ("hidden_1", "hidden_2", "output")
GROWTH_TAPS = {n: [(f"activity_{i}", {"kind": "activity", "layers": [ACTIVITY_LAYERS[i % 3]],
                                      "norm": ("l2", "l1")[i // 3 % 2]}) for i in range(n)] for n in (1, 3, 5, 10)}


# --- networks and data --------------------------------------------------------------------------
def build_network(name: str) -> Any:
    """A fresh, seeded network; every one has a ``hidden_1`` (and ``hidden_2``) for the components."""
    import keras

    keras.utils.set_random_seed(0)
    if name in MLP_WIDTHS:
        inputs = keras.Input((FEATURES,), name="inputs")
        x = inputs
        for i, width in enumerate(MLP_WIDTHS[name], start=1):
            x = keras.layers.Dense(width, activation="relu", name=f"hidden_{i}")(x)
        if len(MLP_WIDTHS[name]) == 1:
            x = keras.layers.Dense(16, activation="relu", name="hidden_2")(x)
        return keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax", name="output")(x), name=name)
    return resnet()


def resnet() -> Any:
    """A small ResNet on 32×32×3: a stride-2 stem, 3 stages of 2 residual blocks with 64/128/256
    channels at 16/8/4 pixels (about 2.8M parameters, most of them in the last stage)."""
    import keras

    layers = keras.layers
    inputs = keras.Input((32, 32, 3), name="inputs")
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="stem")(inputs)
    for stage, channels in enumerate((64, 128, 256), start=1):
        for block in (1, 2):
            stride = 2 if block == 1 and stage > 1 else 1
            shortcut = x if stride == 1 and x.shape[-1] == channels else layers.Conv2D(
                channels, 1, strides=stride, name=f"s{stage}b{block}_proj")(x)
            y = layers.Conv2D(channels, 3, strides=stride, padding="same", activation="relu",
                              name=f"s{stage}b{block}_conv1")(x)
            y = layers.Conv2D(channels, 3, padding="same", name=f"s{stage}b{block}_conv2")(y)
            x = layers.Activation("relu", name=f"s{stage}b{block}_out")(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(128, activation="relu", name="hidden_1")(x)
    x = layers.Dense(64, activation="relu", name="hidden_2")(x)
    return keras.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="output")(x), name="resnet_2M")


#: training steps per epoch, for epochs of a few seconds on two cores
STEPS = {("mlp_10k", 32): 1000, ("mlp_100k", 32): 600, ("mlp_1M", 32): 200, ("mlp_10M", 32): 40,
         ("resnet_2M", 32): 30, ("mlp_10k", 256): 400, ("mlp_100k", 256): 150, ("mlp_1M", 256): 40,
         ("mlp_10M", 256): 10, ("resnet_2M", 256): 10}


def examples(name: str, batch: int) -> int:
    """Examples for :data:`STEPS` whole batches."""
    return STEPS[(name, batch)] * batch


def synthetic(name: str, n: int) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (32, 32, 3) if name == "resnet_2M" else (FEATURES,)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, CLASSES, n).astype("int32")


# --- one timed fit per variant ------------------------------------------------------------------
def plain(name: str, batch: int, epochs: int, execution: int = EXECUTION) -> float:
    import keras

    keras.backend.clear_session()
    x, y = synthetic(name, examples(name, batch))
    model = build_network(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=execution)
    timer = epoch_timer()
    model.fit(x, y, batch_size=batch, epochs=epochs, callbacks=[timer], verbose=0)
    return statistics.fmean(timer.times[1:])


def with_lossexp(name: str, batch: int, epochs: int, loss: Sequence[Any], store: str, drift: bool,
                 tracking: bool, gradients: bool = True) -> float:
    import lossexp

    x, y = synthetic(name, examples(name, batch))
    timer = epoch_timer()
    lossexp.fit(build_network(name), (x, y), loss=list(loss), callbacks=[timer],
                trainer={"epochs": epochs, "batch_size": batch, "validation_split": 0.0, "verbose": 0,
                         "steps_per_execution": EXECUTION},
                tracking={"enabled": tracking, "uri": store, "drift": drift, "gradients": gradients, "plots": False,
                          "log_model": False, "experiment": "bench"})
    return statistics.fmean(timer.times[1:])


def reference(name: str, batch: int, epochs: int, term: str) -> float:
    """The hand-written TensorFlow step for ``term`` (see :func:`reference_model`)."""
    import keras

    keras.backend.clear_session()
    x, y = synthetic(name, examples(name, batch))
    model = reference_model(build_network(name), term)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=EXECUTION)
    timer = epoch_timer()
    model.fit(x, y, batch_size=batch, epochs=epochs, callbacks=[timer], verbose=0)
    return statistics.fmean(timer.times[1:])


#: the default config's maths (``DEFAULT_LOSS`` at its defaults), for the headline's hand-written step
DEFAULT_REFERENCE = "default"
ACTIVITY_WEIGHT = 0.001


def reference_model(network: Any, term: str, hidden: str = "hidden_1") -> Any:
    """A Keras model whose train step adds ``term``'s gradient by hand, per variable.

    hist_avg (weight λ = 0.01, lossexp's default): r ← r + rate·(θ − r) with rate 1/t (mean),
    1 − 0.99 (ema, 1 at t = 1) or r = θ_prev (previous); gradient += 2λ(θ − r); the term Σ(θ − r)²
    is computed for the reported loss, as lossexp reports it. cross_layer / coef: λ·Σ‖W‖_F over
    hidden_1, hidden_2 (coef: λ = softplus(s), s trained), through the tape. ``default``
    (:data:`DEFAULT_REFERENCE`): hist_avg's mean mode plus 0.001 · the batch mean of each example's
    Σ h² over the output h of the layer ``hidden`` (``hidden_1``), through the tape — the same maths, without lossexp's
    composition, metrics or ordering guarantees.
    """
    import keras
    import tensorflow as tf

    kind, options = TERMS.get(term, (DEFAULT_REFERENCE, {"mode": "mean"}))
    mode = options.get("mode")
    averaged = kind in ("hist_avg", DEFAULT_REFERENCE)

    class Reference(keras.Model):
        def __init__(self) -> None:
            super().__init__(name=f"ref_{term}")
            self.network = network
            self.weights_tracked = network.trainable_weights
            if kind == DEFAULT_REFERENCE:  # the output and hidden_1's activation in one forward pass
                self.with_hidden = keras.Model(network.inputs, [network.output, network.get_layer(hidden).output])
            if averaged:  # float64 references, as lossexp's (a float32 mean stops following in long runs)
                dtype = "float32" if mode == "previous" else "float64"
                self.references = [self.add_weight(shape=w.shape, initializer="zeros", trainable=False, dtype=dtype,
                                                   autocast=False) for w in self.weights_tracked]
                self.t = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="float64",
                                         autocast=False)
            if kind == "coef":
                self.s = self.add_weight(shape=(), initializer=keras.initializers.Constant(np.log(np.expm1(0.01))))

        def call(self, x: Any, training: bool = False) -> Any:
            return self.network(x, training=training)

        def train_step(self, data: Any) -> Any:
            x, y = data
            kernels = [self.network.get_layer(n).kernel for n in ("hidden_1", "hidden_2")] \
                if kind in ("cross_layer", "coef") else []
            with tf.GradientTape() as tape:
                if kind == DEFAULT_REFERENCE:
                    y_pred, hidden = self.with_hidden(x, training=True)
                    per_example = tf.reduce_sum(tf.square(hidden), axis=list(range(1, len(hidden.shape))))
                    loss = self._compile_loss(y, y_pred) + ACTIVITY_WEIGHT * tf.reduce_mean(per_example)
                else:
                    y_pred = self(x, training=True)
                    loss = self._compile_loss(y, y_pred)
                if kind == "cross_layer":
                    loss = loss + tf.add_n([tf.norm(k) for k in kernels])
                if kind == "coef":
                    loss = loss + tf.nn.softplus(self.s) * tf.add_n([tf.norm(k) for k in kernels])
            variables = self.trainable_weights
            gradients = tape.gradient(loss, variables)
            if averaged:
                t = self.t.assign_add(1.0)
                rate = 1.0 / t if mode == "mean" else tf.where(t <= 1.0, 1.0, 0.01)
                rate = tf.cast(rate, tf.float64)
                squares = []
                by_id = {id(v): i for i, v in enumerate(variables)}
                for weight, ref in zip(self.weights_tracked, self.references):
                    if mode == "previous":
                        new_ref = tf.where(t <= 1.0, weight, ref)
                        ref.assign(weight)
                        diff = weight - new_ref
                    else:
                        theta = tf.cast(weight, tf.float64)
                        new_ref = ref + rate * (theta - ref)
                        ref.assign(new_ref)
                        diff = tf.cast(theta - new_ref, weight.dtype)
                    squares.append(tf.reduce_sum(tf.square(diff)))
                    i = by_id[id(weight)]
                    gradients[i] = gradients[i] + 0.02 * diff
                loss = loss + 0.01 * tf.add_n(squares)
            self.optimizer.apply_gradients(zip(gradients, variables))
            self._loss_tracker.update_state(loss)
            return self.compute_metrics(x, y, y_pred)

    return Reference()


# --- the measures -------------------------------------------------------------------------------
def interleaved(variants: Dict[str, Callable[[], float]], repeats: int) -> Dict[str, List[float]]:
    times: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            times[name].append(run())
    return times


SECTIONS = ("headline", "drift", "terms", "growth", "profile")
#: where each section's results go in :func:`measure`'s dictionary
SECTION_KEYS = {"headline": ("parameters", "epoch_seconds", "same_batching_ratio", "as_written_ratio",
                             "headline_split"),
                "drift": ("drift_cost",), "terms": ("weight_space_terms",), "growth": ("growth_at_1M",),
                "profile": ("profile",)}
#: the profile's networks (batch 32) and its variants, each adding one part to the one before it
PROFILE_NETWORKS = ("mlp_10k", "mlp_1M")
PROFILE = ("plain", "hand_written", "components", "tracking", "drift", "gradients")
#: repeats of the profile: a part costs a few % of a step, the machine's noise is ±20 % between fits
PROFILE_REPEATS = 7
PROFILE_PARTS = {"hand_written": "the default maths by hand", "components": "lossexp's composition of it",
                 "tracking": "MLflow tracking", "drift": "drift statistics", "gradients": "gradient diagnostics"}


def profile_variants(name: str, epochs: int, store: str) -> Dict[str, Callable[[], float]]:
    """The :data:`PROFILE` variants at ``name``, batch 32."""
    def lossexp_with(tracking: bool, drift: bool, gradients: bool) -> Callable[[], float]:
        return lambda: with_lossexp(name, 32, epochs, DEFAULT_LOSS, store, drift, tracking, gradients)

    return {"plain": lambda: plain(name, 32, epochs),
            "hand_written": lambda: reference(name, 32, epochs, DEFAULT_REFERENCE),
            "components": lossexp_with(False, False, False), "tracking": lossexp_with(True, False, False),
            "drift": lossexp_with(True, True, False), "gradients": lossexp_with(True, True, True)}


def profile_table(times: Dict[str, List[float]], steps_per_epoch: int) -> Dict[str, Any]:
    """Each :data:`PROFILE` variant over plain, and what it adds to the one before it in µs per step:
    the median over repeats of the two variants' paired difference (timed side by side in one repeat)."""
    rows = {}
    for before, variant in zip(PROFILE, PROFILE[1:]):
        added = [1e6 * (a - b) / steps_per_epoch for a, b in zip(times[variant], times[before])]
        rows[variant] = {"over_plain": ratio_spread(times[variant], times["plain"]), "added_us_per_step": spread(added)}
    return {"steps_per_epoch": steps_per_epoch, "plain_us_per_step": 1e6 * min(times["plain"]) / steps_per_epoch,
            "parts": rows, "epoch_seconds": {v: spread(t) for v, t in times.items()}}


def carry_over(results: Dict[str, Any], previous: Dict[str, Any]) -> None:
    """Complete a run of some sections on every network and batch with the other sections of the
    ``previous`` complete run, each labelled in ``setup["measured"]`` with when it was measured."""
    setup, before = results["setup"], previous.get("setup", {})
    if tuple(setup["networks"]) != NETWORKS or tuple(setup["batches"]) != BATCHES:
        return
    if tuple(before.get("networks", ())) != NETWORKS or tuple(before.get("batches", ())) != BATCHES:
        return
    earlier = before.get("measured") or {section: "an earlier run" for section in before.get("sections", ())}
    for section in SECTIONS:
        if section not in setup["sections"] and section in earlier:
            for key in SECTION_KEYS[section]:
                if key in previous:  # a key this code added after that run is absent from it
                    results[key] = previous[key]
            setup["measured"][section] = earlier[section]
    setup["partial"] = any(section not in setup["measured"] for section in SECTIONS)


def measure(quick: bool = False, networks: Sequence[str] = NETWORKS, batches: Sequence[int] = BATCHES,
            sections: Sequence[str] = SECTIONS, repeats: Optional[int] = None) -> Dict[str, Any]:
    """The measures of the module docstring; ``networks``, ``batches`` and ``sections`` select a part
    of them (a partial run says so in its ``setup``); ``repeats`` of each variant (default 3, 2 quick)."""
    epochs = 5
    repeats = repeats or (2 if quick else 3)
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    partial = tuple(networks) != NETWORKS or tuple(batches) != BATCHES or tuple(sections) != SECTIONS
    results: Dict[str, Any] = {"setup": {
        "optimizer": "Adam(1e-3)", "steps_per_execution": EXECUTION, "epochs": epochs, "repeats": repeats,
        "timed": "a fit's mean epoch over epochs 2..E; ratio of the fastest fits", "default_loss": DEFAULT_LOSS, "partial": partial,
        "sections": list(sections), "batches": list(batches), "measured": {s: now for s in sections},
        "networks": {n: MLP_WIDTHS.get(n, "ResNet 3×2 blocks 64/128/256") for n in networks}}}
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        headline, as_written, split, times_all, params = {}, {}, {}, {}, {}
        for name in networks if "headline" in sections else ():
            params[name] = int(build_network(name).count_params())
            for batch in batches:
                variants = {
                    "plain": lambda: plain(name, batch, epochs),
                    "plain_as_written": lambda: plain(name, batch, epochs, execution=1),
                    "default": lambda: with_lossexp(name, batch, epochs, DEFAULT_LOSS, store, True, True),
                    "hand_written": lambda: reference(name, batch, epochs, DEFAULT_REFERENCE),
                }
                times = interleaved(variants, repeats)
                key = f"{name}/batch_{batch}"
                times_all[key] = {v: spread(t) for v, t in times.items()}
                headline[key] = ratio_spread(times["default"], times["plain"])
                as_written[key] = ratio_spread(times["default"], times["plain_as_written"])
                split[key] = {"lossexp_over_hand_written": ratio_spread(times["default"], times["hand_written"]),
                              "hand_written_over_plain": ratio_spread(times["hand_written"], times["plain"])}
        results.update(parameters=params, epoch_seconds=times_all, same_batching_ratio=headline,
                       as_written_ratio=as_written, headline_split=split)

        drift = {}
        for name in networks if "drift" in sections else ():
            times = interleaved({"none": lambda: with_lossexp(name, 32, epochs, [], store, False, True),
                                 "none_drift": lambda: with_lossexp(name, 32, epochs, [], store, True, True)},
                                repeats)
            drift[f"{name}/batch_32"] = {"ratio": ratio_spread(times["none_drift"], times["none"]),
                                         "epoch_seconds": {v: spread(t) for v, t in times.items()}}
        results["drift_cost"] = drift

        terms = {}
        for size in [n for n in ("mlp_1M", "mlp_10M") if n in networks] if "terms" in sections else ():
            for term, entry in TERMS.items():
                times = interleaved({
                    "lossexp": lambda: with_lossexp(size, 32, epochs, [entry], store, False, False),
                    "reference": lambda: reference(size, 32, epochs, term),
                    "plain": lambda: plain(size, 32, epochs)}, repeats)
                terms[f"{size}/{term}"] = {
                    "lossexp_over_reference": ratio_spread(times["lossexp"], times["reference"]),
                    "lossexp_over_plain": ratio_spread(times["lossexp"], times["plain"]),
                    "reference_over_plain": ratio_spread(times["reference"], times["plain"]),
                    "epoch_seconds": {v: spread(t) for v, t in times.items()}}
        results["weight_space_terms"] = terms

        if "growth" in sections:
            series = {"growth": GROWTH, "taps": GROWTH_TAPS}
            variants = {"plain": lambda: plain("mlp_1M", 32, epochs)}
            for label, growth in series.items():
                for count, entries in growth.items():
                    variants[f"{label}_{count}"] = lambda e=entries: with_lossexp("mlp_1M", 32, epochs, e, store,
                                                                                  False, False)
            times = interleaved(variants, repeats)
            results["growth_at_1M"] = growth_line(times, "growth", list(GROWTH))
            results["growth_at_1M"]["taps_only"] = growth_line(times, "taps", list(GROWTH_TAPS))
        profile = {}
        for name in [n for n in PROFILE_NETWORKS if n in networks] if "profile" in sections else ():
            times = interleaved(profile_variants(name, epochs, store), PROFILE_REPEATS if not quick else repeats)
            profile[f"{name}/batch_32"] = profile_table(times, STEPS[(name, 32)])
        results["profile"] = profile
    results["goals"] = {"same_batching_ratio": 1.10, "drift_cost": 1.03, "lossexp_over_reference": 1.10,
                        "per_component": 0.02}
    return results


def growth_line(times: Dict[str, List[float]], label: str, counts: List[int]) -> Dict[str, Any]:
    """The ratios over plain of ``<label>_<n>`` for each count, and their least-squares line."""
    ratios = {str(n): ratio_spread(times[f"{label}_{n}"], times["plain"]) for n in counts}
    slope, intercept = linear_fit(counts, [ratios[str(n)]["of_fastest"] for n in counts])
    return {"ratios": ratios, "per_component": slope, "at_zero": intercept}


def linear_fit(xs: List[float], ys: List[float]) -> Tuple[float, float]:
    """Least-squares slope and intercept of ``ys`` against ``xs``."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    return slope, mean_y - slope * mean_x
