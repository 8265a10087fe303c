"""A directory of images in one sub-directory per class, streamed through Keras' reader."""
from __future__ import annotations

from typing import Annotated, List, Literal, Optional, Tuple

import math

from lossexp.data import resolve_path
from lossexp.data.dataset import Dataset, Part
from lossexp.errors import ConfigError
from lossexp.options import Check, PositiveInts
from lossexp.registry import register_data

CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


@register_data("images", task="classification")
def images(directory: str, image_size: PositiveInts = (64, 64),
           color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb",
           scale: Annotated[float, Check("a positive finite number", lambda v: math.isfinite(v) and v > 0)] = 1 / 255,
           seed: int = 0) -> Dataset:
    """``directory/<class>/<image>`` files (jpeg, png, bmp, gif), classes in sorted folder order,
    read with ``keras.utils.image_dataset_from_directory`` and streamed: images are decoded batch
    by batch, never all held in memory.

    Images are resized to ``image_size`` (height, width) and multiplied by ``scale`` (1/255: pixels
    in [0, 1]). The validation split is Keras' own: the file list shuffled from ``seed``, its last
    ``trainer.validation_split`` held out. Relative paths are relative to the project directory.

    Options: ``directory``; ``image_size``; ``color_mode``; ``scale``; ``seed``.
    """
    import keras

    folder = resolve_path("data.directory", directory, directory=True)
    size = tuple(image_size)
    if len(size) != 2:
        raise ConfigError(f"Invalid value for data.image_size: expected [height, width], got {list(image_size)!r}")

    def read(validation_split: Optional[float] = None, subset: Optional[str] = None, shuffle: bool = True):
        return keras.utils.image_dataset_from_directory(
            folder, labels="inferred", label_mode="int", color_mode=color_mode, batch_size=None, image_size=size,
            shuffle=shuffle, seed=seed, validation_split=validation_split, subset=subset, verbose=False)

    def rescaled(stream):
        return stream.map(lambda x, y: (x * scale, y))

    whole = read(shuffle=False)
    class_names: List[str] = list(whole.class_names)
    count = int(whole.cardinality())
    if count < 2 or len(class_names) < 1:
        raise ConfigError(f"Invalid value for data.directory: expected class folders holding images, got "
                          f"{directory!r} ({count} images in {len(class_names)} folders)")

    def split(fraction: float) -> Tuple[Part, Optional[Part]]:
        if fraction <= 0:
            return Part(stream=rescaled(read()), size=count), None
        train, validation = read(validation_split=fraction, subset="both")
        return (Part(stream=rescaled(train), size=int(train.cardinality())),
                Part(stream=rescaled(validation), size=int(validation.cardinality())))

    return Dataset("images", "classification", stream=rescaled(whole), size=count, num_outputs=len(class_names),
                   splitter=split, extras={"class_names": class_names, "channels": CHANNELS[color_mode]})
