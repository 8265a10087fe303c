"""``lossexp evaluate MODEL.keras [overrides]``: reload a saved lossexp model and score it.

The model is loaded with every lossexp class registered (the composed model, each loss
component, the VAE's sampling layer, the task losses), in Keras' safe mode, and evaluated with
its own compiled loss and metrics on the validation split of the configured data. The data is
that of the run that saved the model when its ``config.yaml`` lies beside it (as ``lossexp
train`` writes it; read as data by :mod:`lossexp.replay`), else the default config; overrides (``data=regression``,
``trainer.validation_split=0.5``, …) apply on top, composed and validated as for ``train``.

A file that is missing, corrupt, from an older lossexp or not a lossexp model, and data the
model cannot take, are :class:`~lossexp.errors.ConfigError`: one line, exit status 2.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

from lossexp.errors import ConfigError, invalid_value
from lossexp.replay import load_replayed_config

USAGE = "lossexp evaluate MODEL.keras [overrides]"
#: the name under which the model file is reported in messages
MODEL_KEY = "MODEL"
#: the config ``lossexp train`` writes beside ``model.keras`` in the run's output directory
SAVED_CONFIG = "config.yaml"
EXPECTED = "a .keras file saved by lossexp train"
#: the registered names of the models lossexp saves (``model.keras``)
COMPOSED = "lossexp>ComposedModel"
LOSSEXP_MODELS = (COMPOSED, "lossexp>GANModel")


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"


def saved_overrides(model_path: Path, user_overrides: Sequence[str]) -> List[str]:
    """Overrides that select the saved run's model, data and validation split, less the keys the
    user sets (all of a group's keys when the user picks another option of the group)."""
    saved_path = model_path.parent / SAVED_CONFIG
    if not saved_path.is_file():
        return []
    source = f"{str(saved_path)!r} (the config of the run that saved {model_path.name})"
    try:
        text = saved_path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Invalid file {source}: {exc}; move it away to evaluate on the configured data") from None
    saved = load_replayed_config(text, source)
    user_keys = {override.split("=", 1)[0].lstrip("+~") for override in user_overrides}
    overrides = []
    for group in ("model", "data"):
        section = saved.get(group)
        if group in user_keys or not isinstance(section, dict) or "name" not in section:
            continue
        overrides.append(f"{group}={section['name']}")
        overrides += [_override(f"{group}.{key}", value) for key, value in section.items()
                      if key != "name" and f"{group}.{key}" not in user_keys]
    split = (saved.get("trainer") or {}).get("validation_split")
    if split is not None and "trainer.validation_split" not in user_keys:
        overrides.append(_override("trainer.validation_split", split))
    return overrides


def _register_lossexp_classes() -> None:
    """Import every module that registers a Keras-serialisable lossexp class."""
    import importlib

    from lossexp.losses.registry import available, component_class

    for module in ("lossexp.training.composed_model", "lossexp.training.task_losses", "lossexp.models.vae",
                   "lossexp.training.gan_model"):
        importlib.import_module(module)
    for name in available():
        try:
            component_class(name)
        except ConfigError:  # a broken third-party component: loading fails only if the model uses it
            continue


def _bad_file(path: Path, reason: str) -> ConfigError:
    return ConfigError(f"Invalid value for {MODEL_KEY}: expected {EXPECTED}, got {str(path)!r} ({reason})")


def inspect_archive(path: Path) -> str:
    """The saved model's class name, read from the archive without Keras (so without TensorFlow).

    A ``.keras`` file is a zip of ``metadata.json`` (the Keras version), ``config.json`` (the
    model's classes) and the weights. A missing, corrupt, Keras 2 or foreign file fails here.
    """
    if not path.is_file():
        raise _bad_file(path, "no such file")
    if path.suffix != ".keras":
        raise _bad_file(path, "the name must end in .keras")
    try:
        with zipfile.ZipFile(path) as archive:
            missing = sorted({"metadata.json", "config.json"} - set(archive.namelist()))
            if not missing:
                metadata = json.loads(archive.read("metadata.json"))
                config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _bad_file(path, f"not a readable zip archive, corrupt or truncated: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise _bad_file(path, f"its JSON is corrupt: {exc}") from None
    if missing:
        raise _bad_file(path, f"no {' or '.join(missing)} in the archive: not a Keras 3 model file")
    version = str(metadata.get("keras_version", "unknown")) if isinstance(metadata, dict) else "unknown"
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 3:
        raise _bad_file(path, f"saved by Keras {version}; lossexp reads files of Keras 3 — retrain the model")
    registered = config.get("registered_name") if isinstance(config, dict) else None
    if registered not in LOSSEXP_MODELS:
        raise _bad_file(path, f"a {registered or 'model of unknown class'}, not a lossexp model "
                              f"({' or '.join(LOSSEXP_MODELS)})")
    return registered


def load_model(path: Path) -> Any:
    """The saved lossexp model at ``path``; a :class:`ConfigError` for anything Keras cannot load."""
    inspect_archive(path)
    import keras

    _register_lossexp_classes()
    try:
        return keras.saving.load_model(path, compile=True, safe_mode=True)
    except Exception as exc:  # a damaged or outdated file fails in many ways, all of them the file's fault
        # Keras nests the cause in the message: its last line is the innermost error
        reason = next((line.strip() for line in reversed(str(exc).splitlines()) if line.strip()), "")
        for advice in (" Full object config", ". Make sure custom classes"):  # Keras' advice to developers
            reason = reason.split(advice)[0]
        reason = reason.removeprefix("Exception encountered: ")[:300]
        raise _bad_file(path, f"Keras cannot load it; saved by another lossexp version? {reason}") from None


def evaluate(model_path: str, overrides: Sequence[str] = ()) -> Dict[str, float]:
    """Loss and metrics of the saved model on the configured data's validation split."""
    from lossexp.precheck import compose_validated

    path = Path(model_path)
    if inspect_archive(path) != COMPOSED:
        raise _bad_file(path, "a GAN: it has no validation split to evaluate on; see its ring/* metrics")
    config = compose_validated([*saved_overrides(path, overrides), *overrides])
    split = config.trainer.validation_split
    if split <= 0:
        raise invalid_value("trainer.validation_split", "0 < validation_split < 1 to evaluate on", split)
    model = load_model(path)

    from lossexp.data import load
    from lossexp.models import prepare_data

    data = prepare_data(config.model, load(config.data))
    _, (x, y) = data.split(split)
    expected_shape = tuple(model.network.input_shape[1:])
    if expected_shape != data.input_shape:
        raise invalid_value("data", f"data with inputs of shape {expected_shape}, as the model takes",
                            f"{config.data.name} {data.input_shape}")
    outputs = int(model.network.output_shape[-1])
    if outputs != data.num_outputs:
        raise invalid_value("data", f"data with {outputs} outputs, as the model has",
                            f"{config.data.name} ({data.num_outputs})")
    results = model.evaluate(x, y, batch_size=config.trainer.batch_size, return_dict=True, verbose=0)
    return {name: float(value) for name, value in results.items()}


def main(args: Sequence[str]) -> int:
    """``lossexp evaluate MODEL.keras [overrides]``: print one ``name value`` line per metric."""
    if args and args[0] in ("-h", "--help"):
        print(f"usage: {USAGE}\n\n{__doc__.split(chr(10) * 2, 1)[1]}", end="")
        return 0
    if not args:
        raise ConfigError(f"Missing {MODEL_KEY}: usage: {USAGE}")
    if args[0].startswith("-") or "=" in args[0]:
        raise ConfigError(f"Invalid value for {MODEL_KEY}: expected the path of a .keras file first "
                          f"({USAGE}), got {args[0]!r}")
    model_path, overrides = args[0], list(args[1:])
    results = evaluate(model_path, overrides)
    width = max(len(name) for name in results)
    for name, value in results.items():
        print(f"{name:<{width}}  {value:.6g}")
    return 0
