"""The weights on the simplex that minimise ``F(w) = wᵀl + c·‖Jᵀw‖``, from the Gramian ``G = J Jᵀ``.

MGDA's min-norm point (Sener & Koltun 2018: l = 0, c = 1, since the argmin of ‖Jᵀw‖ is that of its
square) and CAGrad's dual problem (Liu et al. 2021: l = G·1/K, c = c·‖g₀‖) are both of this form,
with ``‖Jᵀw‖ = √(wᵀGw)``. F is convex, so it is solved by Frank–Wolfe with an *exact* line search
— the minimum of ``a·γ + c·√(q₂γ² + q₁γ + q₀)`` over ``γ ∈ [0, 1]`` has a closed form
(:func:`segment_argmin`) — which for two tasks is one line search along the whole simplex, the
closed form both papers give. For more tasks each iteration takes the better of the Frank–Wolfe
step (towards the best vertex, Sener & Koltun's Algorithm 2) and an *away* step (mass moved off
the worst vertex in use; Lacoste-Julien & Jaggi 2015), which lets a weight reach exactly 0 and
converges linearly where plain Frank–Wolfe zig-zags. Everything is TensorFlow ops (a ``tf.while_loop`` for K > 2) so it
runs inside the compiled step; the Gramian is divided by its mean diagonal first, which leaves the
minimiser unchanged (both terms of F scale alike) and keeps float32 well conditioned.
"""
from __future__ import annotations

from typing import Any

#: Frank–Wolfe stops when the combination Jᵀw moves less than this, relative to its norm, in one
#: iteration (not the weights themselves: a weight of 10⁻⁶ on a gradient 10⁶ times the others' moves it
#: by as much as the rest) …
TOLERANCE = 1e-6
#: … or after this many iterations (Sener & Koltun's solver: 250)
ITERATIONS = 250


def segment_argmin(a: Any, c: Any, q2: Any, q1: Any, q0: Any) -> Any:
    """argmin over γ ∈ [0, 1] of ``a·γ + c·√(q₂γ² + q₁γ + q₀)``, with c ≥ 0 and the quadratic ≥ 0 on ℝ.

    Where the derivative vanishes, ``a + c·√q₂·u/√(u² + D) = 0`` with ``u = 2q₂γ + q₁`` and
    ``D = 4q₂q₀ − q₁² ≥ 0``, so ``u = r·√(D/(1 − r²))`` for ``r = −a/(c√q₂)`` when |r| < 1; otherwise
    the function is monotone and the minimum is an end point. The result is clipped to [0, 1].
    """
    import tensorflow as tf

    tiny = 1e-12
    at_zero = c * tf.sqrt(tf.maximum(q0, 0.0))
    at_one = a + c * tf.sqrt(tf.maximum(q2 + q1 + q0, 0.0))
    end_point = tf.where(at_one < at_zero, 1.0, 0.0)
    curved = (q2 > tiny) & (c > 0.0)  # c is scaled by the Gramian's: MGDA's c = 1 is 10⁻¹³ for gradients of 10¹³
    safe_q2 = tf.where(curved, q2, 1.0)
    r = -a / tf.where(curved, c * tf.sqrt(safe_q2), 1.0)
    discriminant = tf.maximum(4.0 * q2 * q0 - q1 * q1, 0.0)
    inside = tf.abs(r) < 1.0
    u = r * tf.sqrt(discriminant / tf.where(inside, 1.0 - r * r, 1.0))
    stationary = tf.clip_by_value((u - q1) / (2.0 * safe_q2), 0.0, 1.0)
    monotone = tf.where(r >= 1.0, 1.0, 0.0)
    return tf.where(curved, tf.where(inside, stationary, monotone), end_point)


def _line_search(gramian: Any, linear: Any, c: Any, w: Any, target: Any) -> Any:
    """The point of the segment from ``w`` to ``target`` that minimises F."""
    import tensorflow as tf

    v = target - w
    gw, gv = tf.linalg.matvec(gramian, w), tf.linalg.matvec(gramian, v)
    gamma = segment_argmin(tf.tensordot(v, linear, 1), c, tf.tensordot(v, gv, 1), 2.0 * tf.tensordot(w, gv, 1),
                           tf.tensordot(w, gw, 1))
    return w + gamma * v


def minimize(gramian: Any, linear: Any, c: Any, allowed: Any = None, iterations: int = ITERATIONS,
             tolerance: float = TOLERANCE) -> Any:
    """The weights w (on the simplex) minimising ``wᵀ·linear + c·√(wᵀ·gramian·w)``.

    ``gramian`` (K, K) and ``linear`` (K,) are float32 tensors, ``c`` a scalar ≥ 0; K is static.
    ``allowed`` (K booleans, default all) restricts w to the face of the tasks it marks (the others
    get weight 0); with none allowed, w is uniform.
    """
    import tensorflow as tf

    gramian = tf.cast(gramian, tf.float32)
    linear = tf.cast(linear, tf.float32)
    k = int(gramian.shape[0])
    if k == 1:
        return tf.ones((1,), tf.float32)
    allowed = tf.ones((k,), tf.bool) if allowed is None else tf.convert_to_tensor(allowed)
    scale = tf.linalg.trace(gramian) / k
    scale = tf.where(scale > 0.0, scale, 1.0)
    gramian, linear, c = gramian / scale, linear / scale, tf.cast(c, tf.float32) / tf.sqrt(scale)  # F / scale
    eye = tf.eye(k, dtype=tf.float32)
    uniform = tf.fill((k,), 1.0 / k)
    barred = tf.where(allowed, 0.0, float("inf"))  # never a Frank–Wolfe vertex
    if k == 2:
        solved = _line_search(gramian, linear, c, eye[0], eye[1])
        return tf.where(tf.reduce_all(allowed), solved,
                        tf.where(tf.reduce_any(allowed), tf.cast(allowed, tf.float32), uniform))
    values = linear + c * tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0)) + barred
    start = tf.gather(eye, tf.argmin(values))

    def step(i: Any, w: Any, moved: Any) -> Any:
        gw = tf.linalg.matvec(gramian, w)
        norm = tf.sqrt(tf.maximum(tf.tensordot(w, gw, 1), 0.0))
        gradient = linear + tf.where(norm > 1e-12, c * gw / tf.where(norm > 1e-12, norm, 1.0), 0.0)
        toward = tf.gather(eye, tf.argmin(gradient + barred))
        in_use = w > 0.0
        away_index = tf.argmax(tf.where(in_use, gradient, -float("inf")))
        away = tf.gather(eye, away_index)
        forward_gain = tf.tensordot(gradient, toward - w, 1)
        away_gain = tf.tensordot(gradient, w - away, 1)
        # the away step's end point: w moved off the away vertex until its weight is 0
        mass = tf.gather(w, away_index)
        away_end = tf.where(mass < 1.0, (w - mass * away) / tf.maximum(1.0 - mass, 1e-12), w)
        target = tf.where(forward_gain <= away_gain, toward, away_end)
        new = _line_search(gramian, linear, c, w, target)
        change = new - w
        moved = tf.sqrt(tf.maximum(tf.tensordot(change, tf.linalg.matvec(gramian, change), 1), 0.0))
        size = tf.sqrt(tf.maximum(tf.tensordot(new, tf.linalg.matvec(gramian, new), 1), 0.0))
        return i + 1, new, tf.where(moved > 0.0, moved / tf.maximum(size, 1e-12), 0.0)

    _, w, _ = tf.while_loop(lambda i, w, moved: (i < iterations) & (moved > tolerance), step,
                            (tf.constant(0), start, tf.constant(1.0)))
    return tf.where(tf.reduce_any(allowed), w, uniform)
