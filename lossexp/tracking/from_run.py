"""``lossexp train --from-run RUN_ID [overrides]``: train again exactly what a run trained.

Every run logs its composed, resolved config as the artifact ``config.yaml``. This module reads it
back from the store (``tracking.uri=`` on the command line, ``$MLFLOW_TRACKING_URI``, or the
default store under the current directory) as data (:mod:`lossexp.replay`: nothing in it is
resolved, and where the new run goes — store, experiment, name, parent — is the replaying
user's, never the file's), writes it as a primary config (with lossexp's own ``hydra:``
settings, so output directories stay where they were) into a temporary directory and returns
Hydra arguments that select it (``--config-dir DIR --config-name from_run``). The overrides that
follow apply on top of it (``trainer.seed=1``, ``trainer.epochs=10``) and are validated here,
with the destinations of the run, since the CLI's usual pre-check composes from ``conf/``.
An override that chooses a group afresh (``model=cnn``, ``optimizer=sgd``, ``loss=activity``) drops
the run's section of that group: the choice's own YAML (lossexp's or the project's) takes its place,
as in a fresh run, and its keys may be overridden in turn (``optimizer=sgd optimizer.momentum=0.9``).
No TensorFlow import.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from omegaconf import OmegaConf

from lossexp import CONF_DIR, project
from lossexp.errors import ConfigError
from lossexp.overrides import unreadable_override
from lossexp.replay import load_replayed_config

FLAG = "--from-run"
#: set for the training process, so the new run is tagged ``lossexp.from_run=<RUN_ID>``
ENV = "LOSSEXP_FROM_RUN"
#: set for the training process when the run was an ``experiment=NAME``'s, so the re-run is tagged and named as its
EXPERIMENT_ENV = "LOSSEXP_FROM_RUN_EXPERIMENT"
#: the project the replayed run was trained with (its tag), for the hint of a sweep's job checks
PROJECT_ENV = "LOSSEXP_FROM_RUN_PROJECT"
CONFIG_NAME = "from_run"
ARTIFACT = "config.yaml"
#: the config groups an override may choose afresh for the re-run
GROUPS = ("data", "loss", "model", "optimizer", "weighting", "trainer")


def split_flag(args: Sequence[str], flag: str = FLAG) -> Tuple[Optional[str], List[str]]:
    """(RUN_ID or None, the other arguments) from ``--from-run RUN_ID`` / ``--from-run=RUN_ID`` (or
    another ``flag`` that names a run)."""
    rest, run_id = [], None
    tokens = iter(args)
    for token in tokens:
        if token == flag:
            run_id = next(tokens, None)
            if not run_id:
                raise ConfigError(f"Invalid value for {flag}: expected a run id, got nothing")
        elif token.startswith(flag + "="):
            run_id = token[len(flag) + 1:]
        else:
            rest.append(token)
    return run_id, rest


def full_run_id(run_id: str, args: Sequence[str]) -> str:
    """The run ``run_id`` names: itself, or the one run of the store (``args``' ``tracking.uri``, else the
    default) whose id starts with it — the 8-character ids ``lossexp runs`` shows. Several such runs are
    one line listing them; none, or a store that cannot be read, is left to :func:`logged_config` to say."""
    import re

    from lossexp.tracking import store

    if not re.fullmatch(r"[0-9a-f]{4,31}", run_id):
        return run_id
    overrides = [a for a in args if not a.startswith("-") and "=" in a]
    uri = store_uri(overrides)
    if uri.startswith(("http://", "https://")):  # a server: checked first (MLflow retries a silent one for minutes)
        from lossexp.tracking.reachability import check_usable_server

        check_usable_server(uri, "tracking.uri" if any(a.startswith("tracking.uri=") for a in overrides)
                            else "MLFLOW_TRACKING_URI")
    elif not store.is_local_sqlite(uri) or not store.sqlite_path(uri).exists():
        return run_id
    from lossexp.tracking.run_ids import ids_starting_with

    matches = ids_starting_with(store.open_client(uri), run_id)
    if len(matches) > 1:
        raise ConfigError(f"Invalid value for a run id: {run_id!r} starts the ids of {len(matches)} runs "
                          f"({', '.join(m[:12] for m in matches[:5])}…): give more of it")
    return matches[0] if matches else run_id


def store_uri(overrides: Sequence[str]) -> str:
    """The store to read the run from: the command line's ``tracking.uri`` (read as Hydra reads the
    override: ``null`` is no URI), else ``$MLFLOW_TRACKING_URI``, else the default store."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    from lossexp.errors import invalid_value
    from lossexp.tracking import store

    configured = None
    for override in overrides:
        if override.lstrip("+~").split("=", 1)[0].strip() != "tracking.uri":
            continue
        try:
            [parsed] = OverridesParser.create().parse_overrides([override])
        except OverrideParseException as exc:
            raise unreadable_override(exc) from None
        value = None if parsed.is_delete() else parsed.value()
        if value is not None and not isinstance(value, str):
            raise invalid_value("tracking.uri", "a tracking URI (one, not a sweep)", override.split("=", 1)[-1])
        configured = value
    return store.resolve_uri(configured or None, Path.cwd())


def logged_config(run_id: str, uri: str, flag: str = FLAG) -> str:
    """The text of the run's ``config.yaml`` artifact; ConfigError (naming ``flag``) if there is no such
    run or file."""
    return logged_run(run_id, uri, flag)[0]


def logged_run(run_id: str, uri: str, flag: str = FLAG) -> Tuple[str, Dict[str, str]]:
    """(the text of the run's ``config.yaml`` artifact, the run's tags); ConfigError (naming ``flag``)
    if there is no such run or file."""
    from mlflow.exceptions import MlflowException

    from lossexp.tracking import store
    from lossexp.tracking.reachability import check_usable_server

    unknown = ConfigError(f"Unknown run {run_id!r} for {flag}: no such run in {uri}")
    if store.is_local_sqlite(uri) and not store.sqlite_path(uri).exists():
        raise unknown  # and do not create an empty store to find that out
    if uri.startswith(("http://", "https://")):  # answers, takes the credentials: one line in seconds
        check_usable_server(uri)
    try:
        client = store.open_client(uri)
    except MlflowException as error:
        raise store.unusable(error, uri, "tracking.uri") from None
    try:
        tags = client.get_run(run_id).data.tags
    except MlflowException as error:
        if store.is_access_denied(error):
            raise ConfigError(f"Invalid value for {flag}: expected a run your MLflow credentials may read, got "
                              f"{run_id!r} ({uri}: HTTP {error.get_http_status_code()} {error.error_code})") from None
        raise unknown from None
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one file: no progress bar
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = client.download_artifacts(run_id, ARTIFACT, scratch)
        except (MlflowException, OSError):
            raise ConfigError(f"Invalid value for {flag}: run {run_id!r} has no {ARTIFACT} artifact "
                              "(it was not started by lossexp train)") from None
        return Path(path).read_text(), dict(tags)


def chosen_groups(overrides: Sequence[str]) -> Dict[str, Any]:
    """The groups that ``overrides`` choose afresh (``model=cnn``; not ``model.width=8``), each with
    no choice of its own (None: the override's), and those their choices' YAML choose in turn, with
    that choice (``model=vae`` brings ``loss=[kl]``: Hydra matches such an override only to a
    default that has a choice)."""
    chosen: Dict[str, Any] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+") in GROUPS:
            for choice in value.split(","):  # a sweep's choices too
                chosen.update({group: brought for group, brought in _chosen_by(key.lstrip("+"), choice).items()
                               if group not in chosen})
            chosen[key.lstrip("+")] = None
    return {group: chosen[group] for group in GROUPS if group in chosen}


def _chosen_by(group: str, choice: str) -> Dict[str, Any]:
    """The choices that the YAML of ``group=choice`` makes for other groups (``override /loss…: [kl]``
    in its defaults list), by group."""
    from lossexp import project

    found = project.current()
    for conf in [CONF_DIR, *([found.conf_dir] if found and found.conf_dir else [])]:
        path = conf / group / f"{choice.strip()}.yaml"
        if path.is_file():
            defaults = OmegaConf.to_container(OmegaConf.load(path)).get("defaults") or []
            entries = [(key, value) for entry in defaults if isinstance(entry, dict) for key, value in entry.items()]
            return {match.group(1): value for key, value in entries
                    if (match := re.match(r"override /(\w+)", str(key)))}
    return {}


def write_primary_config(config: Dict[str, Any], directory: Path, groups: Optional[Dict[str, Any]] = None) -> Path:
    """``<directory>/from_run.yaml``: the replayed config (as loaded by :mod:`lossexp.replay`), plus
    lossexp's own ``hydra:`` section; each of ``groups`` (see :func:`chosen_groups`) is left to its
    choice (its section dropped, the group in the defaults list)."""
    groups = groups or {}
    config = OmegaConf.create({key: value for key, value in config.items() if key not in groups})
    config.hydra = OmegaConf.load(CONF_DIR / "config.yaml").hydra
    if groups:  # their options: lossexp's conf/ (the project's comes by its search-path plugin)
        config.hydra.searchpath = [f"file://{CONF_DIR}"]
    path = directory / f"{CONFIG_NAME}.yaml"
    defaults = OmegaConf.to_yaml({"defaults": [*({group: choice} for group, choice in groups.items()), "_self_"]})
    path.write_text(defaults + "\n" + OmegaConf.to_yaml(config))
    return path


def validate_overrides(directory: Path, overrides: Sequence[str]) -> None:
    """Compose the re-run with its overrides and validate it, and check that the store it will be
    recorded in answers (one-line ConfigError on a mistake)."""
    from hydra import compose, initialize_config_dir

    from lossexp.config import validate
    from lossexp.tracking.reachability import check_tracking

    from lossexp.precheck import translate_errors

    with initialize_config_dir(config_dir=str(directory), version_base="1.3", job_name="lossexp_from_run"):
        try:  # a misspelled key with the valid ones, as without --from-run: "Unknown key trainer.epoch: valid keys …"
            with translate_errors(list(overrides), CONFIG_NAME):
                cfg = compose(CONFIG_NAME, overrides=list(overrides))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (an override of {FLAG})") from None
    config = validate(cfg)
    if config.tracking.enabled:
        check_tracking(config.tracking.uri, Path.cwd(), config.tracking.experiment)


def rerun_args(run_id: str, args: Sequence[str], multirun: bool) -> List[str]:
    """Hydra arguments that train ``run_id``'s config again, with ``args`` (flags, overrides) on top."""
    overrides = [a for a in args if not a.startswith("-") and "=" in a]
    text, tags = logged_run(run_id, store_uri(overrides))
    config = load_replayed_config(text, f"the {ARTIFACT} of run {run_id!r}")
    groups = chosen_groups(overrides)
    given = [group for group in ("model", "data") if isinstance(config.get(group), dict)
             and config[group].get("source") == "python" and group not in groups]
    if given:
        raise ConfigError(f"Invalid value for {given[0]}: run {run_id!r} trained on a {' and '.join(given)} given in "
                          f"Python (lossexp.fit), which no config builds again: choose "
                          f"{' '.join(f'{group}=…' for group in given)} on top (e.g. model=keras_file "
                          "model.path=net.keras, data=npz data.path=train.npz), or call lossexp.fit again")
    directory = Path(tempfile.mkdtemp(prefix="lossexp-from-run-"))
    atexit.register(shutil.rmtree, directory, True)
    write_primary_config(config, directory, groups)
    if not multirun:
        from lossexp.overrides import rewrite_loss
        from lossexp.registry import available

        try:
            validate_overrides(directory, rewrite_loss(overrides, available("loss")))
        except ConfigError as error:  # a part of a project this directory does not see: say where it is
            raise project.located(error, tags.get(project.TAG)) from None
    os.environ[ENV] = run_id
    if tags.get(project.TAG):
        os.environ[PROJECT_ENV] = tags[project.TAG]
    if tags.get("experiment"):
        os.environ[EXPERIMENT_ENV] = tags["experiment"]
    return ["--config-dir", str(directory), "--config-name", CONFIG_NAME, *args]
