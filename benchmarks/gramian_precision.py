"""``python -m benchmarks.gramian_precision``: what accumulating the tasks' Gramian in float64 changes.

``precision``: gradients of a 986,300-weight network (a 6→700→700→700 trunk's six variables),
float32 as the tape gives them, in pairs and triples 10⁻²…10⁻⁵ apart (relative to their norm),
nearly parallel or nearly opposite. Each of the Gramian-reading methods (mgda, cagrad, imtl, pcgrad)
weighs them from the Gramian formed as before (float32 products, ``float32``) and as now
(``adaptive``: float64 sums for such gradients), against a float64 NumPy reference written from the papers on the gradient vectors:
the weights' largest error, the update's relative error ‖Jᵀ(α − α*)‖/‖Jᵀα*‖, and (mgda, cagrad)
the worst task's rate min gᵢ·d relative to the reference's.

``cost``: the compiled training step of that trunk under K linear split heads (K = 3, 8; batch 64,
Adam), ``mgda`` and ``cagrad``, with the float32 Gramian (the earlier code, swapped in while the step
is traced), the Gramian summed in float64 every step, and lossexp's (``adaptive``: float32, formed again in
float64 when the tasks are nearly dependent; the random targets here are not), interleaved in one process:
the process's CPU time per step, median of the rounds.

Writes ``benchmarks/gramian_precision.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np

from benchmarks.common import machine

HERE = Path(__file__).resolve().parent
SHAPES = [(6, 700), (700,), (700, 700), (700,), (700, 700), (700,)]
SIZE = sum(int(np.prod(s)) for s in SHAPES)


# -- float64 references, on the gradient vectors ----------------------------------------------------------
def mgda_reference(jacobian: np.ndarray) -> np.ndarray:
    """Sener & Koltun's min-norm weights: Algorithm 1's closed form on the vectors for two tasks, the
    quadratic programme's best KKT point over every face for more."""
    if len(jacobian) == 2:
        g1, g2 = jacobian
        a = float(np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0))
        return np.array([a, 1.0 - a])
    gramian = jacobian @ jacobian.T
    k, best, best_value = len(gramian), None, np.inf
    for size in range(1, k + 1):
        for face in itertools.combinations(range(k), size):
            sub = gramian[np.ix_(face, face)]
            system = np.block([[2 * sub, np.ones((size, 1))], [np.ones((1, size)), np.zeros((1, 1))]])
            solution = np.linalg.lstsq(system, np.r_[np.zeros(size), 1.0], rcond=None)[0][:size]
            if (solution >= -1e-12).all():
                w = np.zeros(k)
                w[list(face)] = solution
                if w @ gramian @ w < best_value:
                    best, best_value = w, w @ gramian @ w
    return best


def cagrad_reference(jacobian: np.ndarray, c: float) -> np.ndarray:
    """Liu et al.'s Algorithm 1: the dual's w by SciPy, α = 1/K + c‖g₀‖·w/‖g_w‖."""
    from scipy.optimize import minimize, minimize_scalar

    k = len(jacobian)
    g0 = jacobian.mean(axis=0)
    radius = c * np.linalg.norm(g0)

    def dual(w: np.ndarray) -> float:
        gw = jacobian.T @ w
        return gw @ g0 + radius * np.linalg.norm(gw)

    if k == 2:
        x = minimize_scalar(lambda x: dual(np.array([x, 1 - x])), bounds=(0, 1), method="bounded",
                            options={"xatol": 1e-13}).x
        w = np.array([x, 1 - x])
    else:
        w = minimize(dual, np.ones(k) / k, bounds=[(0, 1)] * k, method="SLSQP", options={"ftol": 1e-16},
                     constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}]).x
    return np.full(k, 1.0 / k) + radius * w / np.linalg.norm(jacobian.T @ w)


def imtl_reference(jacobian: np.ndarray) -> np.ndarray:
    """IMTL-G's closed form α₂…K = g₁Uᵀ(DUᵀ)⁻¹ (Dᵢ = g₁ − gᵢ, Uᵢ = u₁ − uᵢ)."""
    units = jacobian / np.linalg.norm(jacobian, axis=1, keepdims=True)
    rest = jacobian[0] @ (units[0] - units[1:]).T @ np.linalg.inv((jacobian[0] - jacobian[1:]) @ (units[0] - units[1:]).T)
    return np.r_[1 - rest.sum(), rest]


def pcgrad_reference(jacobian: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Yu et al.'s Algorithm 1 on the vectors, in the method's orders; α from the projected sum."""
    k = len(jacobian)
    alpha = np.zeros(k)
    for i, order in enumerate(orders):
        coefficients = np.eye(k)[i]
        for j in order:
            g = jacobian.T @ coefficients
            if j != i and g @ jacobian[j] < 0:
                coefficients = coefficients - (g @ jacobian[j]) / (jacobian[j] @ jacobian[j]) * np.eye(k)[j]
        alpha += coefficients
    return alpha


# -- the Gramian before (float32 products) and always in float64 --------------------------------------------
def float32_gramian(gradients: Any, indices: Any, unscale: Any = 1.0) -> Any:
    """``task_gradients.method_gramian`` as it was: float32 products and sums."""
    import tensorflow as tf

    from lossexp.training import task_gradients

    return tf.add_n(task_gradients.variable_gramians([[task[i] for i in indices] for task in gradients])) * unscale


def float64_gramian(gradients: Any, indices: Any, unscale: Any = 1.0) -> Any:
    """Every step's Gramian summed in float64."""
    import tensorflow as tf

    from lossexp.training import task_gradients

    scoped = [[task[i] for i in indices] for task in gradients]
    return tf.add_n(task_gradients.variable_gramians(scoped, tf.float64)) * tf.cast(unscale, tf.float64)


VARIANTS = {"float32": float32_gramian, "float64": float64_gramian, "adaptive": None}


@contextlib.contextmanager
def gramian_variant(name: str) -> Iterator[None]:
    """While inside, the steps traced use that variant's Gramian (``adaptive``: lossexp's own)."""
    from lossexp.training import task_gradients

    current = task_gradients.method_gramian
    task_gradients.method_gramian = VARIANTS[name] or current
    try:
        yield
    finally:
        task_gradients.method_gramian = current


def cases() -> Dict[str, np.ndarray]:
    """Float32 Jacobians (one row per task) of nearly parallel and nearly opposite gradients."""
    rng = np.random.default_rng(0)
    base, other, third = (rng.standard_normal(SIZE) * 1e-3 for _ in range(3))
    norm = np.linalg.norm(base)
    other, third = other / np.linalg.norm(other), third / np.linalg.norm(third)
    found = {}
    for eps in (1e-2, 1e-3, 1e-4, 1e-5):
        found[f"g, g+e {eps:g}"] = np.stack([base, base + eps * norm * other])
        found[f"g, -g+e {eps:g}"] = np.stack([base, -base + eps * norm * other])
    for eps in (1e-3, 1e-4):
        found[f"g, -g+e, g/2+e {eps:g}"] = np.stack([base, -base + eps * norm * other, 0.5 * base + eps * norm * third])
    return {name: jacobian.astype(np.float32) for name, jacobian in found.items()}


def precision() -> List[Dict[str, Any]]:
    import tensorflow as tf

    from lossexp.balancing.base import Signals
    from lossexp.balancing.cagrad import CAGrad
    from lossexp.balancing.imtl import IMTLG
    from lossexp.balancing.mgda import MGDA
    from lossexp.balancing.pcgrad import PCGrad
    from lossexp.training import task_gradients

    rows = []
    for name, jacobian32 in cases().items():
        jacobian = jacobian32.astype(np.float64)
        k = len(jacobian)
        gradients = []
        for row in jacobian32:
            start, variables = 0, []
            for shape in SHAPES:
                size = int(np.prod(shape))
                variables.append(tf.constant(row[start:start + size].reshape(shape)))
                start += size
            gradients.append(variables)
        scope = range(len(SHAPES))
        grams = {"float32": float32_gramian(gradients, scope), "adaptive": task_gradients.method_gramian(gradients, scope)}
        pcgrad = PCGrad()
        pcgrad.tasks = [f"t{i}" for i in range(k)]
        methods = {"mgda": (MGDA(), mgda_reference(jacobian)), "cagrad": (CAGrad(0.5), cagrad_reference(jacobian, 0.5)),
                   "imtl": (IMTLG(), imtl_reference(jacobian)),
                   "pcgrad": (pcgrad, pcgrad_reference(jacobian, pcgrad.orders(tf.constant(1, tf.int64)).numpy()))}
        for method_name, (method, expected) in methods.items():
            method.tasks = [f"t{i}" for i in range(k)]
            reference_update = jacobian.T @ expected
            row: Dict[str, Any] = {"case": name, "method": method_name}
            for dtype, gram in grams.items():
                alpha = method.weigh(Signals(tf.ones((k,)), gram, tf.constant(1, tf.int64))).numpy().astype(np.float64)
                update = jacobian.T @ alpha
                row[dtype] = {
                    "gramian_error": float(np.abs(gram.numpy() - jacobian @ jacobian.T).max() / np.abs(jacobian @ jacobian.T).max()),
                    "weights_error": float(np.abs(alpha - expected).max()),
                    "update_error": float(np.linalg.norm(update - reference_update) / np.linalg.norm(reference_update)),
                    "worst_rate": float((jacobian @ update).min() / (jacobian @ reference_update).min()),
                }
            rows.append(row)
            print(f"{name:22s} {method_name:7s} " + " | ".join(
                f"{d}: α {row[d]['weights_error']:.1e} d {row[d]['update_error']:.1e} worst {row[d]['worst_rate']:+.3f}"
                for d in grams), flush=True)
    return rows


# -- cost -----------------------------------------------------------------------------------------------
def heads_model(count: int, method: str) -> Any:
    import keras

    from lossexp.balancing.cagrad import CAGrad
    from lossexp.balancing.mgda import MGDA
    from lossexp.training.supervised import compose

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="x")
    x = inputs
    for i in range(3):
        x = keras.layers.Dense(700, activation="tanh", name=f"trunk_{i}")(x)
    names = [f"h{i}" for i in range(count)]
    network = keras.Model(inputs, {n: keras.layers.Dense(1, name=n)(x) for n in names}, name="heads")
    model = compose(network, [], task_loss="mse", weighting={"mgda": MGDA, "cagrad": CAGrad}[method](),
                    split_outputs=names)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss={n: "mse" for n in names})
    return model, names


def cost(rounds: int, steps: int) -> Dict[str, Any]:
    rng = np.random.default_rng(1)
    results: Dict[str, Any] = {}
    for count in (3, 8):
        x = rng.normal(size=(64 * steps, 6)).astype("float32")
        variants = {}
        for method in ("mgda", "cagrad"):
            for variant in VARIANTS:
                model, names = heads_model(count, method)
                y = {n: rng.normal(size=(len(x), 1)).astype("float32") for n in names}
                with gramian_variant(variant):
                    model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)  # traced here
                variants[(method, variant)] = (model, y)
        times: Dict[Any, List[float]] = {key: [] for key in variants}
        for _ in range(rounds):
            for key, (model, y) in variants.items():
                start = time.process_time()
                model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
                times[key].append((time.process_time() - start) / steps * 1000)
        for (method, dtype), values in times.items():
            results[f"{count} tasks {method} {dtype}"] = {"median_ms": statistics.median(values), "values_ms": values}
            print(f"{count} tasks {method:6s} {dtype}: {statistics.median(values):.2f} ms CPU a step "
                  f"({min(values):.2f}–{max(values):.2f})", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--only", choices=["precision", "cost"])
    args = parser.parse_args()
    out: Dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "load": list(__import__("os").getloadavg())}
    if args.only != "cost":
        out["precision"] = precision()
    if args.only != "precision":
        out["cost"] = cost(args.rounds, args.steps)
        out["load_after"] = list(__import__("os").getloadavg())
    (HERE / f"gramian_precision{'_' + args.only if args.only else ''}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
