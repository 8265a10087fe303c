"""The first training step on a stream of 20,000 64×64 PNGs: its time (wall and CPU, from the call)
and the images decoded before it, ``lossexp.fit`` against Keras' ``fit`` on the same stream — files
read and decoded by ``decode_png`` then ``.batch(32)`` (decodes counted in the graph) — ``paths`` in one
fixed shuffled order, ``shuffled`` with the paths reshuffled at every pass before decoding (Keras' idiom:
``.shuffle(20_000)`` of the paths) — or Keras' ``image_dataset_from_directory(batch_size=32)`` (time only;
it shuffles its paths at every pass too). One JSON line per process; run the
sides interleaved, a process each (docs/performance.md, "Start-up on a stream")::

    python -m benchmarks.stream_first_step generate /tmp/pngs
    python -m benchmarks.stream_first_step keras /tmp/pngs paths|shuffled|directory
    python -m benchmarks.stream_first_step lossexp /tmp/pngs paths|shuffled|directory [shuffle]

Both sides run one step per call (``steps_per_execution=1``) and stop after the first."""
from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time


def generate(root: str, images: int = 20_000, classes: int = 10) -> None:
    """``images`` random 64×64 RGB PNGs in ``classes`` folders, the classes interleaved."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        os.makedirs(f"{root}/c{c}", exist_ok=True)
    for i in range(images):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(f"{root}/c{i % classes}/{i:05d}.png")


def main(side: str, root: str, source: str, shuffle: str = "") -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    decodes = tf.Variable(0, dtype=tf.int64, trainable=False)
    if source == "directory":
        data = keras.utils.image_dataset_from_directory(root, batch_size=32, image_size=(64, 64), seed=0, verbose=False)
    else:
        classes = sorted(os.listdir(root))
        found = [(os.path.join(root, c, f), i) for i, c in enumerate(classes) for f in sorted(os.listdir(f"{root}/{c}"))]
        order = np.random.default_rng(0).permutation(len(found))

        def load(path, label):
            decodes.assign_add(1)
            image = tf.cast(tf.io.decode_png(tf.io.read_file(path), channels=3), tf.float32) / 255.0
            image.set_shape((64, 64, 3))
            return image, label

        data = tf.data.Dataset.from_tensor_slices(([found[i][0] for i in order],
                                                   np.array([found[i][1] for i in order], "int64")))
        if source == "shuffled":
            data = data.shuffle(len(found), seed=0)
        data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(32)
    inputs = keras.Input((64, 64, 3))
    hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs))
    network = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden), name="small_cnn")
    first: dict = {}

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if not first:
                first.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, decodes=int(decodes.numpy()))
                self.model.stop_training = True

    wall, cpu = time.perf_counter(), time.process_time()
    if side == "keras":
        network.compile("adam", "sparse_categorical_crossentropy")
        network.fit(data, epochs=1, verbose=0, callbacks=[FirstStep()])
    else:
        import lossexp

        os.chdir(tempfile.mkdtemp())
        lossexp.fit(network, data, trainer={"epochs": 1, "validation_split": 0, "verbose": 0, "steps_per_execution": 1,
                                            **({"shuffle": shuffle} if shuffle else {})},
                    tracking={"plots": False, "log_model": False}, callbacks=[FirstStep()])
    return {"side": side, "source": source, "shuffle": shuffle or "default", **first,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "load": os.getloadavg()[0]}


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2])
    else:
        print(json.dumps(main(*sys.argv[1:])))
