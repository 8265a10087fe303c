"""The weights on the simplex that minimise ``F(w) = wᵀl + c·‖Jᵀw‖``, from the Gramian ``G = J Jᵀ``.

MGDA's min-norm point (Sener & Koltun 2018: l = 0, c = 1, since the argmin of ‖Jᵀw‖ is that of its
square) and CAGrad's dual problem (Liu et al. 2021: l = G·1/K, c = c·‖g₀‖) are both of this form,
with ``‖Jᵀw‖ = √(wᵀGw)``. F is convex, so it is solved by Frank–Wolfe with an *exact* line search
— the minimum of ``a·γ + c·√(q₂γ² + q₁γ + q₀)`` over ``γ ∈ [0, 1]`` has a closed form
(:func:`segment_argmin`) — which for two tasks is one line search along the whole simplex, the
closed form both papers give. For more tasks each iteration takes the better of the Frank–Wolfe
step (towards the best vertex, Sener & Koltun's Algorithm 2) and an *away* step (mass moved off
the worst vertex in use; Lacoste-Julien & Jaggi 2015), which lets a weight reach exactly 0 and
converges linearly where plain Frank–Wolfe zig-zags. Once the iterate is inside the right face those
steps still crawl at a rate set by the face's conditioning, so each iteration also tries a Newton step
on the face (:func:`_face_newton_end`) and keeps whichever of the two ends lower; it stops on
Frank–Wolfe's duality gap. Without the Newton step, three gradients of which one is nearly −1·another
(1 % apart) left MGDA's update 19–29 % longer than the min-norm point's after 250 iterations (2 % after
20,000), and CAGrad (c = 2) making the worst task worse where the dual's improves every task.
Everything is TensorFlow ops (a ``tf.while_loop`` for K > 2) so it runs inside the compiled step, in
float64 (the problem is K×K; in float32, with gradient norms 10⁶ apart, the weights were 2.5·10⁻⁴ off
the float64 solution of the same Gramian, now 8·10⁻⁶); the Gramian is divided by its mean diagonal
first, which leaves the minimiser unchanged (both terms of F scale alike).
"""
from __future__ import annotations

from typing import Any

#: The solver stops when Frank–Wolfe's duality gap (a bound on F(w) − min F) is below this, relative to
#: |wᵀl| + c‖Jᵀw‖ (it stopped when Jᵀw moved less than 10⁻⁶ of its norm in one iteration: a step that
#: drops a weight of 10⁻²⁴ moves it by 10⁻¹⁷, and it stopped 0.29 % off the min-norm weights) …
TOLERANCE = 1e-9
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
    one, nought = tf.ones_like(a), tf.zeros_like(a)
    at_zero = c * tf.sqrt(tf.maximum(q0, 0.0))
    at_one = a + c * tf.sqrt(tf.maximum(q2 + q1 + q0, 0.0))
    end_point = tf.where(at_one < at_zero, one, nought)
    curved = (q2 > tiny) & (c > 0.0)  # c is scaled by the Gramian's: MGDA's c = 1 is 10⁻¹³ for gradients of 10¹³
    safe_q2 = tf.where(curved, q2, one)
    r = -a / tf.where(curved, c * tf.sqrt(safe_q2), one)
    discriminant = tf.maximum(4.0 * q2 * q0 - q1 * q1, 0.0)
    inside = tf.abs(r) < 1.0
    u = r * tf.sqrt(discriminant / tf.where(inside, 1.0 - r * r, one))
    stationary = tf.clip_by_value((u - q1) / (2.0 * safe_q2), 0.0, 1.0)
    monotone = tf.where(r >= 1.0, one, nought)
    return tf.where(curved, tf.where(inside, stationary, monotone), end_point)


def _line_search(gramian: Any, linear: Any, c: Any, w: Any, target: Any) -> Any:
    """The point of the segment from ``w`` to ``target`` that minimises F."""
    import tensorflow as tf

    v = target - w
    gw, gv = tf.linalg.matvec(gramian, w), tf.linalg.matvec(gramian, v)
    gamma = segment_argmin(tf.tensordot(v, linear, 1), c, tf.tensordot(v, gv, 1), 2.0 * tf.tensordot(w, gv, 1),
                           tf.tensordot(w, gw, 1))
    return w + gamma * v


def _value(gramian: Any, linear: Any, c: Any, w: Any) -> Any:
    """F(w) = wᵀl + c·√(wᵀGw)."""
    import tensorflow as tf

    return tf.tensordot(w, linear, 1) + c * tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(gramian, w), 1), 0.0))


def _face_newton_end(gramian: Any, c: Any, w: Any, gw: Any, norm: Any, gradient: Any) -> Any:
    """The end of a Newton step for F on the face of the simplex that ``w`` is inside (the tasks it weighs),
    cut where it would leave the simplex (w itself where there is none: at a vertex, or where Jᵀw = 0).

    Frank–Wolfe and its away steps only find the face; inside it they converge at a rate that falls with
    the face's conditioning (three gradients of which one is nearly −1·another, 1 % apart: after 250
    iterations the update was 16–29 % longer than the min-norm point's, after 20,000 still 2 %). On the face F
    is smooth, ∇²F = c·(G − GwwᵀG/‖Jᵀw‖²)/‖Jᵀw‖, and the step v solves ∇²F v + λ1 = −∇F with Σ v = 0
    over the face's tasks (v = 0 off it): by a pseudo-inverse, as G may be singular (dependent gradients)."""
    import tensorflow as tf

    k = int(w.shape[0])
    face = w > 0.0
    inside = tf.cast(face, tf.float64)
    safe = tf.where(norm > 1e-12, norm, tf.ones_like(norm))
    hessian = c * (gramian - gw[:, None] * gw[None, :] / tf.square(safe)) / safe
    both = inside[:, None] * inside[None, :]
    eye = tf.eye(k, dtype=tf.float64)
    kkt = tf.concat([tf.concat([both * hessian + (1.0 - inside)[:, None] * eye, inside[:, None]], axis=1),
                     tf.concat([inside, tf.zeros((1,), tf.float64)], axis=0)[None, :]], axis=0)
    solved = tf.linalg.matvec(tf.linalg.pinv(kkt), tf.concat([-gradient * inside, tf.zeros((1,), tf.float64)], 0))
    v = solved[:k] * inside
    v = tf.where(tf.reduce_all(tf.math.is_finite(v)) & (norm > 1e-12), v, tf.zeros_like(v))
    leaving = face & (v < 0.0)
    ratios = tf.where(leaving, w / tf.where(leaving, -v, tf.ones_like(v)), tf.fill((k,), tf.constant(float("inf"), tf.float64)))
    room = tf.reduce_min(ratios)
    blocking = tf.equal(tf.range(k, dtype=tf.int64), tf.argmin(ratios))
    end = tf.maximum(w + tf.minimum(room, 1.0) * v, 0.0)
    end = tf.where(blocking & (room <= 1.0), tf.zeros_like(end), end)  # that task leaves the face, exactly
    return end / tf.reduce_sum(end)


def minimize(gramian: Any, linear: Any, c: Any, allowed: Any = None, iterations: int = ITERATIONS,
             tolerance: float = TOLERANCE) -> Any:
    """The weights w (on the simplex) minimising ``wᵀ·linear + c·√(wᵀ·gramian·w)``.

    ``gramian`` (K, K) and ``linear`` (K,) are tensors, ``c`` a scalar ≥ 0; K is static. Solved in
    float64, returned in float64 (the caller casts once it has used w).
    ``allowed`` (K booleans, default all) restricts w to the face of the tasks it marks (the others
    get weight 0); with none allowed, w is uniform.
    """
    import tensorflow as tf

    gramian = tf.cast(gramian, tf.float64)
    linear = tf.cast(linear, tf.float64)
    k = int(gramian.shape[0])
    if k == 1:
        return tf.ones((1,), tf.float64)
    allowed = tf.ones((k,), tf.bool) if allowed is None else tf.convert_to_tensor(allowed)
    scale = tf.linalg.trace(gramian) / k
    scale = tf.where(scale > 0.0, scale, tf.ones_like(scale))
    gramian, linear, c = gramian / scale, linear / scale, tf.cast(c, tf.float64) / tf.sqrt(scale)  # F / scale
    eye = tf.eye(k, dtype=tf.float64)
    uniform = tf.fill((k,), tf.constant(1.0 / k, tf.float64))
    barred = tf.where(allowed, tf.zeros((k,), tf.float64), tf.fill((k,), tf.constant(float("inf"), tf.float64)))
    if k == 2:
        solved = _line_search(gramian, linear, c, eye[0], eye[1])
        return tf.where(tf.reduce_all(allowed), solved,
                        tf.where(tf.reduce_any(allowed), tf.cast(allowed, tf.float64), uniform))
    values = linear + c * tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0)) + barred
    start = tf.gather(eye, tf.argmin(values))

    def step(i: Any, w: Any, done: Any) -> Any:
        gw = tf.linalg.matvec(gramian, w)
        norm = tf.sqrt(tf.maximum(tf.tensordot(w, gw, 1), 0.0))
        gradient = linear + tf.where(norm > 1e-12, c * gw / tf.where(norm > 1e-12, norm, tf.ones_like(norm)),
                                     tf.zeros_like(gw))
        best = tf.argmin(gradient + barred)
        # Frank–Wolfe's duality gap, ≥ F(w) − min F (F is convex), relative to the size of F's two parts
        gap = tf.tensordot(gradient, w, 1) - tf.gather(gradient, best)
        optimal = gap <= tolerance * (tf.abs(tf.tensordot(linear, w, 1)) + c * norm)
        toward = tf.gather(eye, best)
        in_use = w > 0.0
        away_index = tf.argmax(tf.where(in_use, gradient, tf.fill((k,), tf.constant(-float("inf"), tf.float64))))
        away = tf.gather(eye, away_index)
        forward_gain = tf.tensordot(gradient, toward - w, 1)
        away_gain = tf.tensordot(gradient, w - away, 1)
        # the away step's end point: w moved off the away vertex until its weight is 0
        mass = tf.gather(w, away_index)
        away_end = tf.where(mass < 1.0, (w - mass * away) / tf.maximum(1.0 - mass, tf.constant(1e-12, tf.float64)), w)
        target = tf.where(forward_gain <= away_gain, toward, away_end)
        stepped = _line_search(gramian, linear, c, w, target)
        polished = _line_search(gramian, linear, c, w, _face_newton_end(gramian, c, w, gw, norm, gradient))
        new = tf.where(_value(gramian, linear, c, polished) < _value(gramian, linear, c, stepped), polished, stepped)
        new = tf.where(optimal, w, new)
        # optimal, or no step moves it, or a Gramian that is not finite (a diverging step: 250 iterations of NaN)
        return i + 1, new, optimal | tf.reduce_all(tf.equal(new, w)) | tf.logical_not(tf.math.is_finite(gap))

    _, w, _ = tf.while_loop(lambda i, w, done: (i < iterations) & tf.logical_not(done), step,
                            (tf.constant(0), start, tf.constant(False)))
    return tf.where(tf.reduce_any(allowed), w, uniform)
