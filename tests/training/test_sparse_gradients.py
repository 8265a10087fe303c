"""An Embedding's gradient (one slice per lookup: a token used k times has k slices) is summed per
row before the optimizer: Adam's second moment is then of the row's gradient, (Σ gᵢ)², as in
textbook Adam, and a component that makes the gradient dense (``hist_avg``, even at weight 0)
changes nothing. Keras 3's optimizers square the slices one by one (Σ gᵢ²), so a token used k
times moved up to √k·lr in Adam's first step, and adding ``hist_avg`` at weight 0 changed training."""
import numpy as np
import pytest

TOKENS = np.array([[1, 1, 1, 1, 2, 3], [1, 3, 3, 1, 1, 2], [4, 4, 4, 4, 4, 1]], dtype="int32")
TARGETS = np.array([[1.0], [-1.0], [0.5]], dtype="float32")
LEARNING_RATE = 0.01


def embedding_network():
    """tokens (6 of 5 ids) → Embedding 5×3 → mean over the steps → Dense(1)."""
    import keras

    keras.utils.set_random_seed(3)
    tokens = keras.Input(shape=(6,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(5, 3, name="embed")(tokens)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(tokens, keras.layers.Dense(1, name="output")(x))


def trained(components, steps: int):
    """The network after ``steps`` full-batch Adam steps of lossexp's composed model, and its weights before."""
    import keras

    import lossexp

    network = embedding_network()
    before = {w.path: keras.ops.convert_to_numpy(w) for w in network.weights}
    model = lossexp.compose(network, components, task_loss="mean_squared_error")
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    model.fit(TOKENS, TARGETS, batch_size=len(TOKENS), epochs=steps, shuffle=False, verbose=0)
    return network, before


def summed_embedding_gradient(before) -> np.ndarray:
    """dL/dE in NumPy: L = mean_i (ŷᵢ − yᵢ)², ŷᵢ = mean_t E[tokᵢₜ]·w + b; each lookup adds to its row."""
    table, kernel, bias = before["embed/embeddings"], before["output/kernel"], before["output/bias"]
    n, steps = TOKENS.shape
    residual = table[TOKENS].mean(axis=1) @ kernel + bias - TARGETS  # (n, 1)
    gradient = np.zeros_like(table)
    for i in range(n):
        for t in range(steps):
            gradient[TOKENS[i, t]] += 2.0 * residual[i, 0] / n * kernel[:, 0] / steps
    return gradient


def test_first_adam_step_on_an_embedding_is_adam_on_each_rows_summed_gradient():
    import keras

    network, before = trained([], steps=1)
    gradient = summed_embedding_gradient(before)
    adam = keras.optimizers.Adam(LEARNING_RATE)
    # Keras' Adam at step 1: lr·√(1−β₂)/(1−β₁) · (1−β₁)g / (√((1−β₂)g²) + ε) = lr·g / (|g| + ε/√(1−β₂))
    expected = before["embed/embeddings"] - LEARNING_RATE * gradient / (np.abs(gradient) + adam.epsilon / np.sqrt(1 - adam.beta_2))
    moved = keras.ops.convert_to_numpy(network.get_layer("embed").embeddings)
    # token 1 is looked up 8 times, token 4 five times: each row moves lr per coordinate, not √k·lr
    np.testing.assert_allclose(moved, expected, rtol=0, atol=1e-6)
    assert np.abs(moved - before["embed/embeddings"])[1:].max() == pytest.approx(LEARNING_RATE, rel=1e-3)


def test_a_component_at_weight_zero_trains_an_embedding_as_none():
    import keras

    alone, _ = trained([], steps=3)
    with_zero, _ = trained([("hist_avg", {"weight": 0.0})], steps=3)
    for a, b in zip(alone.weights, with_zero.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), err_msg=a.path)
