"""Compose and validate every job's config before Hydra runs anything.

Hydra reports composition mistakes as multi-line messages with exit status 1, and only once a
job starts. Here each job of the command line (each combination of a sweep's discrete values,
up to :data:`MAX_JOBS_CHECKED`) is composed with Hydra's compose API and validated with
:func:`lossexp.config.validate`; Hydra's and OmegaConf's errors become one-line
:class:`~lossexp.errors.ConfigError` messages naming the key and the valid choices. The places a
job writes to are checked too: its output directory (``hydra.run.dir`` / ``hydra.sweep.dir``) can
be created, and its tracking store answers or can be written (see
:mod:`lossexp.tracking.reachability`), so an unreachable server fails in seconds, not after
minutes of MLflow's retries. Nothing here imports TensorFlow (for lossexp's own parts; a user project's module is imported when
a config names its part), except :func:`check_builds`, which builds a sweep's networks before
its first job runs.
"""
from __future__ import annotations

import dataclasses
import itertools
from contextlib import contextmanager
import json
import re
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossexp import CONF_DIR
from lossexp.config import LossexpConfig, validate
from lossexp.errors import ConfigError, unknown_name, yaml_place
from lossexp.losses.entries import check_selected
from lossexp.overrides import unreadable_override
from lossexp.sweeps.checks import check_sweep
from lossexp.tracking.reachability import check_tracking, check_writable_dir

MAX_JOBS_CHECKED = 64
_MISSING = re.compile(r"Could not find '([^']+)'")
_FULL_KEY = re.compile(r"full_key: (\S+)")
#: Hydra's words for ``+key=value`` where the config has the key (a part's YAML, or its signature's defaults)
_APPEND_EXISTING = re.compile(r"Could not append to config\. An item is already at '([^']+)'")
#: OmegaConf's words for a key a config lacks: a plain struct's, or a structured config's (a sweeper's schema)
_NOT_IN = re.compile(r"not in struct|Key '[^']+' not in '")
#: Hydra's refusal of a sweep (``a,b``, ``range(…)``, ``choice(…)``) in a single run
_SWEEP_IN_RUN = re.compile(r"^(?:Ambiguous value for argument|Sweep parameters) '([^']*)'")


def expand_jobs(overrides: Sequence[str], multirun: bool) -> List[List[str]]:
    """The override list of each job (sweep combinations of discrete sweeps; others as given)."""
    if not multirun:
        return [list(overrides)]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        raise unreadable_override(exc) from None
    choices = []
    for override in parsed:
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                continue  # ranges/intervals for a tuning sweeper: checked when the job runs
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([override.input_line])
    return [list(job) for job in itertools.islice(itertools.product(*choices), MAX_JOBS_CHECKED)]


def _valid_keys(cfg: DictConfig, full_key: str) -> str:
    parent = cfg
    for part in full_key.split(".")[:-1]:
        parent = parent.get(part) if isinstance(parent, DictConfig) else None
    return ", ".join(sorted(str(k) for k in parent.keys())) if isinstance(parent, DictConfig) else ""


def _unset_option(cfg: Optional[DictConfig], full_key: str, job: Sequence[str]) -> str:
    """``; it is an option of data=slow that its YAML does not set: +data.fail_on_pass=7 sets it`` when the
    unknown key is a keyword parameter of the part its group chose (Hydra adds a key its YAML lacks
    only with ``+``); empty otherwise."""
    from lossexp.registry import KINDS, get

    group, _, option = full_key.partition(".")
    if group == "loss" and option.count(".") == 1:  # loss.<entry>.<option>: the component's YAML lacks it?
        from lossexp.losses.entries import kind_of, yaml_lacks

        entry, _, name = option.partition(".")
        section = cfg.get("loss", {}) if cfg is not None else {}
        return yaml_lacks(kind_of(entry, section.get(entry) if entry in section else None), name)
    kind = next((kind for kind, spec in KINDS.items() if spec.group == group), None)
    name = cfg.get(group, {}).get("name") if cfg is not None and kind is not None and "." not in option else None
    try:
        options = get(kind, str(name)).options() if name else {}
    except ConfigError:
        return ""
    if option not in options:
        return ""
    given = next((o for o in job if o.split("=", 1)[0] == full_key), f"{full_key}=…")
    return f"; it is an option of {group}={name} that its YAML does not set: +{given} sets it"


_ABSENT = object()


def _optuna_option(config_name: str, full_key: str, others: Sequence[str]) -> str:
    """``; it is an option of hydra/sweeper=lossexp_optuna …`` when a ``hydra.sweeper.`` key the job's
    sweeper lacks (``n_trials``, ``pruner`` under the basic one) is an option of lossexp's Optuna sweeper."""
    if not full_key.startswith("hydra.sweeper.") or any(o.startswith("hydra/sweeper=") for o in others):
        return ""
    try:
        optuna = compose(config_name, overrides=[*others, "hydra/sweeper=lossexp_optuna"], return_hydra_config=True)
    except (HydraException, OmegaConfBaseException):
        return ""
    if OmegaConf.select(optuna, full_key, default=_ABSENT) is _ABSENT:
        return ""
    return "; it is an option of hydra/sweeper=lossexp_optuna (or hparams_search=…), not of this sweep's sweeper"


def _translate(exc: Exception, config_name: str, job: Sequence[str]) -> ConfigError:
    """One line for one of Hydra's or OmegaConf's composition errors (inside the compose context)."""
    text = str(exc)
    if isinstance(exc, OverrideParseException):
        return unreadable_override(exc)
    if isinstance(exc, MissingConfigException) and _MISSING.search(text):
        group, _, name = _MISSING.search(text).group(1).rpartition("/")
        if exc.options:
            return unknown_name(group or "config", name, exc.options)
    swept = _SWEEP_IN_RUN.search(text)
    if swept:
        return _sweep_without_m(swept.group(1))
    appended = _APPEND_EXISTING.search(text)
    if appended:  # '+' adds a key the config lacks
        key = appended.group(1)
        given = next((o for o in job if o.startswith("+") and not o.startswith("++")
                      and o[1:].split("=", 1)[0].strip() == key), f"+{key}=…")
        return ConfigError(f"Invalid override {given!r}: {key} is in the config already; set it without the '+': "
                           f"{given[1:]}")
    cause = exc.__cause__ or exc
    key_match = _FULL_KEY.search(str(cause)) or _FULL_KEY.search(text)
    if key_match and _NOT_IN.search(str(cause) + text):
        full_key = key_match.group(1)
        others = [o for o in job if not o.lstrip("+~").startswith(full_key)]
        try:  # this job, less the bad key
            composed = compose(config_name, overrides=others, return_hydra_config=full_key.startswith("hydra."))
            valid = _valid_keys(composed, full_key)
        except (HydraException, OmegaConfBaseException):
            composed, valid = None, ""
        message = f"Unknown key {full_key}: valid keys are {valid}" if valid else f"Unknown key {full_key}"
        parent = full_key.rpartition(".")[0]
        if not valid and composed is not None and isinstance(OmegaConf.select(composed, parent, default=None), DictConfig):
            given = next((o for o in job if o.split("=", 1)[0].strip() == full_key), f"{full_key}=…")
            message += f": {parent} is an empty mapping, which a key is added to with '+' ({'+' + given})"
        return ConfigError(message + _unset_option(composed, full_key, job) + _optuna_option(config_name, full_key,
                                                                                               others))
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    if cause is not exc and first.startswith("Error merging override"):  # Hydra's line says nothing of why
        first += ": " + next((line.strip() for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
    return ConfigError(first)


def _sweep_without_m(override: str) -> ConfigError:
    """``model=mlp,cnn`` without ``-m``: Hydra's "Ambiguous value" named the override as lossexp rewrote
    it (``loss=[hist_avg],[activity]``) and said nothing of what to type; one line with the override as
    typed, the ``-m`` that sweeps it, and the ways to mean one value."""
    key, _, value = override.partition("=")
    if key.strip() == "loss":  # lossexp's lists (a+b → [a,b]) back to what was typed
        value = re.sub(r"\[([^\[\]]*)\]", lambda m: "+".join(part.strip() for part in m.group(1).split(",")), value)
    typed = f"{key}={value}"
    if key.strip() == "loss":
        one = "; for one run, components are joined with '+' (loss=hist_avg+activity)"
    elif "." in key and not value.rstrip().endswith(")"):  # an option's value, not a group's nor range(…)
        one = f"; for one run, a list is {key}=[{value}], a text with a comma is quoted: {key}='{value}'"
    else:
        one = ""
    return ConfigError(f"Invalid override {typed!r}: several values are a sweep, which needs -m (lossexp train -m "
                       f"{typed}){one}")


@contextmanager
def translate_errors(job: Sequence[str], config_name: str = "config") -> Iterator[None]:
    """Hydra's and OmegaConf's composition errors as one-line ConfigErrors (inside the compose context)."""
    try:
        yield
    except (HydraException, OmegaConfBaseException) as exc:
        raise _translate(exc, config_name, job) from None
    except yaml.YAMLError as exc:  # a YAML file of the project's (or lossexp's) conf/ that does not parse
        raise ConfigError(yaml_error(exc)) from None
    except ValueError as exc:  # Hydra's own checks of an override it parsed (e.g. `=0`: a value without a key)
        raise ConfigError(f"Invalid override in {' '.join(job)!r}: {str(exc).splitlines()[0]}") from None


def yaml_error(exc: "yaml.YAMLError") -> str:
    """``Invalid YAML in conf/model/x.yaml, line 3: expected ',' or ']', but got ':'`` (the file relative
    to the working directory when it lies inside it)."""
    if getattr(exc, "problem_mark", None) is None:
        return f"Invalid YAML: {str(exc).splitlines()[0]}"
    return f"Invalid YAML in {yaml_place(exc)}"


def _compose(job: Sequence[str], config_name: str) -> DictConfig:
    """One job's config, with its ``hydra`` section (inside the compose context)."""
    with translate_errors(job, config_name):
        return compose(config_name, overrides=list(job), return_hydra_config=True)


def compose_validated(overrides: Sequence[str], config_name: str = "config") -> LossexpConfig:
    """The validated config of one job, composed as ``lossexp train`` would (no destinations checked)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="lossexp_precheck"):
        return validate(_compose(overrides, config_name))


def _check_destinations(cfg: DictConfig, config: LossexpConfig, multirun: bool, seen: Set[Tuple[str, str]]) -> None:
    """The job's output directory can be written and its tracking store reached (each checked once)."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        output_dir = str(OmegaConf.select(cfg, key))
    except OmegaConfBaseException:  # an interpolation only Hydra's runtime resolves: Hydra checks it
        output_dir = ""
    if output_dir and (key, output_dir) not in seen:
        seen.add((key, output_dir))
        check_writable_dir(Path(output_dir), key)
    destination = f"{config.tracking.uri or ''} {config.tracking.experiment}"
    if config.tracking.enabled and ("tracking.uri", destination) not in seen:
        seen.add(("tracking.uri", destination))
        check_tracking(config.tracking.uri, Path.cwd(), config.tracking.experiment)


def _selected_components(job: Sequence[str]) -> List[str]:
    """The components the job's own ``loss=[a,b]`` selects (none when it leaves ``loss`` to the config)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    chosen = [o for o in job if o.split("=", 1)[0].strip() == "loss"]
    if not chosen:
        return []
    value = OverridesParser.create().parse_override(chosen[-1]).value()
    return [str(name) for name in value] if isinstance(value, list) else [str(value)] if value else []


class Job(NamedTuple):
    """A job's overrides and validated config, and where a line about it says the mistake is."""

    overrides: List[str]
    config: Optional[LossexpConfig]  # None: its config did not validate
    #: ``in sweep job: …`` (a grid's job), or ``at an end of hydra.sweeper.params: …`` (a config an Optuna trial may draw)
    where: str = ""

    def refused(self, error: ConfigError) -> ConfigError:
        """``error``'s line, saying which job (or end of the search space) it is about."""
        return ConfigError(f"{error} ({self.where})") if self.where else error


def sweeper_params(overrides: Sequence[str], config_name: Optional[str] = None) -> List[str]:
    """The grid the config itself defines for the basic sweeper (``hydra.sweeper.params``, from a config
    file such as a project's ``conf/grid/NAME.yaml``) as overrides ``key=values``: a sweep's grid beside
    its command line's, which Hydra's task overrides never show."""
    job = expand_jobs(overrides, multirun=True)[0]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="lossexp_precheck"):
        params = _compose(job, config_name or "config").hydra.sweeper.get("params") or {}
    return [f"{key}={value}" for key, value in params.items()]


def _with_configured_grid(jobs: List[List[str]], overrides: Sequence[str], config_name: str) -> List[List[str]]:
    """``jobs`` with the grid the config defines for the basic sweeper (``hydra.sweeper.params``, a
    project's ``conf/grid/NAME.yaml``) expanded too, the command line's values winning for a key of
    both, as Hydra's ``BasicSweeper`` merges them: only the command line's combinations were checked,
    so a bad value of the config's grid failed its job mid-sweep."""
    try:
        sweeper = _compose(jobs[0], config_name).hydra.sweeper
    except ConfigError:
        return jobs  # the loop reports it, naming the job
    params = sweeper.get("params") or {}
    if "BasicSweeper" not in str(sweeper.get("_target_", "")) or not params:
        return jobs
    given = {override.split("=", 1)[0].lstrip("+~") for override in overrides if "=" in override}
    configured = [f"{key}={value}" for key, value in params.items() if key not in given]
    return expand_jobs([*configured, *overrides], multirun=True)


def check_jobs(overrides: Sequence[str], multirun: bool, config_name: Optional[str] = None,
               destinations: bool = True, config_dir: Optional[Path] = None) -> List[Job]:
    """Raise :class:`ConfigError` for the first job whose config does not compose or validate, or
    (with ``destinations``) whose output directory or tracking store cannot be used; else return
    each :class:`Job`, an Optuna sweep's search space at its two ends after its jobs (what only a
    built component checks, an option's range, :func:`check_builds` checks there). ``config_dir``:
    where the primary config lies when it is not lossexp's own (``--from-run``'s replayed config)."""
    config_name = config_name or "config"
    jobs = expand_jobs(overrides, multirun)
    seen: Set[Tuple[str, str]] = set()
    checked = []
    with initialize_config_dir(config_dir=str(config_dir or CONF_DIR), version_base="1.3",
                               job_name="lossexp_precheck"):
        if multirun:
            jobs = _with_configured_grid(jobs, overrides, config_name)
        for job in jobs:
            where = f"in sweep job: {' '.join(job)}" if multirun and len(jobs) > 1 else ""
            try:
                cfg = _compose(job, config_name)
                # the YAML of each selected component first: one holding another name ('pne:' in pen.yaml) was
                # "Unknown loss component 'pne'", of a name the user never typed, and no file
                check_selected(_selected_components(job), cfg.get("loss"))
                config = validate(cfg)
                if destinations:
                    _check_destinations(cfg, config, multirun, seen)
            except ConfigError as error:
                raise Job(job, None, where).refused(error) from None
            checked.append(Job(job, config, where))
        if multirun:  # an Optuna sweep's search space, sampler, pruner and study
            ends = check_sweep(cfg, overrides, lambda job: validate(_compose(job, config_name)))
            checked += [Job(job, config, f"at an end of hydra.sweeper.params: {' '.join(end)}")
                        for end, job, config in ends]
    return checked


def check_builds(jobs: Sequence[Job]) -> None:
    """Build every distinct job's model and loss components once, without training.

    What only the built network shows (a layer name it lacks, ``kl`` without ``model=vae``, a
    component's option range, the user's builder failing) is thus reported before a sweep's first
    job runs, not after some jobs have already been recorded. This imports TensorFlow: the CLI
    calls it for sweeps only.
    """
    import keras

    from lossexp.data import load
    from lossexp.training.trainer import for_config

    built = set()
    for job in jobs:
        config = job.config
        # weights are fully checked without TensorFlow: jobs that differ only in weights build alike
        options = {name: {k: v for k, v in (opts or {}).items() if k != "weight"} for name, opts in config.loss.items()}
        key = json.dumps([dataclasses.asdict(config.model), dataclasses.asdict(config.data),
                          dataclasses.asdict(config.task), options], sort_keys=True, default=str)
        if key in built:
            continue
        built.add(key)
        keras.backend.clear_session()
        try:
            trainer = for_config(config)
            trainer.build(trainer.prepare(load(config.data)))
        except ConfigError as error:
            raise job.refused(error) from None
    keras.backend.clear_session()
