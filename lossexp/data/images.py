"""A directory of images in one sub-directory per class, streamed through Keras' reader."""
from __future__ import annotations

import contextlib
import functools
import io
import os
from pathlib import Path
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
    A listed file that is not an image (an empty file, a web page saved as ``.jpg``) is named in
    one line before anything trains (:func:`check_decodable`).

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
    check_decodable(directory, folder, whole.file_paths)

    @functools.lru_cache(maxsize=None)  # each fraction's file list once (a run asks for its split several times)
    def split(fraction: float) -> Tuple[Part, Optional[Part]]:
        if fraction <= 0:
            return Part(stream=rescaled(read()), size=count), None
        with contextlib.redirect_stdout(io.StringIO()):  # Keras' "Using 288 files for training.", verbose or not
            train, validation = read(validation_split=fraction, subset="both")
        return (Part(stream=rescaled(train), size=int(train.cardinality())),
                Part(stream=rescaled(validation), size=int(validation.cardinality())))

    return Dataset("images", "classification", stream=rescaled(whole), size=count, num_outputs=len(class_names),
                   splitter=split, extras={"class_names": class_names, "channels": CHANNELS[color_mode]})


#: how each format TensorFlow's ``decode_image`` reads begins (JPEG, PNG, GIF, BMP; WebP below)
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
#: how a whole file of each format ends: PNG's IEND chunk, JPEG's end-of-image marker, GIF's trailer
ENDINGS = {b"\x89PNG": b"IEND\xaeB`\x82", b"\xff\xd8\xff": b"\xff\xd9", b"GIF8": b";"}
#: files named one by one in the message
NAMED = 3


def undecodable(paths: List[str]) -> Tuple[List[str], List[str]]:
    """(the files among ``paths`` that do not begin as an image TensorFlow decodes — an empty file, a web
    page saved as ``.jpg`` —, those that begin as one but do not decode — a download cut off, a damaged
    file). Each is read at its first 12 and last 12 bytes (about 20 µs a file, warm cache); one whose end
    is not its format's (or whose header's size is not its size: BMP, WebP) is decoded, as training would,
    to tell trailing bytes, which TensorFlow ignores, from a file cut off. Such a file stopped training at
    the first batch holding it with TensorFlow's "Unknown image file format" or "Invalid PNG", no file
    named."""
    import tensorflow as tf

    not_images, broken = [], []
    for path in paths:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(12)
            file.seek(max(0, size - 12))
            tail = file.read(12)
        webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        if not (head.startswith(SIGNATURES) or webp):
            not_images.append(path)
        elif not _whole(head, tail, size, webp):
            try:
                tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
            except tf.errors.InvalidArgumentError:
                broken.append(path)
    return not_images, broken


def _whole(head: bytes, tail: bytes, size: int, webp: bool) -> bool:
    """Whether a file that begins as an image ends as a whole one does (its format's ending, or the size its
    header gives)."""
    if webp:
        return int.from_bytes(head[4:8], "little") + 8 == size
    if head.startswith(b"BM"):
        return int.from_bytes(head[2:6], "little") == size
    ending = next(end for start, end in ENDINGS.items() if head.startswith(start))
    return tail.endswith(ending)


def check_decodable(directory: str, folder: Path, paths: List[str]) -> None:
    """One line naming the files Keras' reader lists that are not images, or do not decode (see
    :func:`undecodable`)."""
    not_images, broken = undecodable(paths)
    said = []
    for files, one, several in ((not_images, "is not an image", "are not images"),
                                (broken, "does not decode (cut off or damaged)", "do not decode (cut off or damaged)")):
        if files:
            named = ", ".join(str(Path(path).relative_to(folder)) for path in files[:NAMED])
            more = f", … ({len(files)} of {len(paths)} files)" if len(files) > NAMED else ""
            said.append(f"{named}{more} {one if len(files) == 1 else several}")
    if said:
        raise ConfigError(f"Invalid value for data.directory: expected image files (JPEG, PNG, GIF, BMP, WebP; "
                          f"remove or convert the others), got {directory!r}, where {' and '.join(said)}")
