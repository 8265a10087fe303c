"""A quiet console: no TensorFlow C++ / absl / oneDNN start-up notices, no MLflow INFO lines.

TensorFlow 2.21 prints its oneDNN and CPU-feature notices through absl *before* absl's logging is
initialised, so ``TF_CPP_MIN_LOG_LEVEL`` does not hide them, and it prints them twice (two shared
libraries). They all appear while ``import tensorflow`` runs: :func:`configure` wraps that import
(whoever triggers it: Keras, MLflow, lossexp) in a redirection of file descriptor 2, then writes back
every captured line that is not such a notice (errors, Python warnings). MLflow reads
``MLFLOW_LOGGING_LEVEL`` when it is imported; both variables are set in ``os.environ``, so the
worker processes of a sweep (joblib/loky, submitit, Ray) inherit them, and the Hydra task function
calls :func:`configure` again in each worker for the import filter.

Against a tracking server MLflow also writes two lines per run to stdout as it ends ("🏃 View run …
at:", "🧪 View experiment at:"); ``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT`` hides them, as lossexp's
summary already gives the run's link.

``LOSSEXP_LOG_LEVEL=info`` (or ``debug``) brings everything back; variables the user set
(``TF_CPP_MIN_LOG_LEVEL``, ``MLFLOW_LOGGING_LEVEL``, ``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT``) are
never overridden.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from typing import Iterator, List

from lossexp.errors import ConfigError

ENV = "LOSSEXP_LOG_LEVEL"
LEVELS = ("warning", "info", "debug")
DEFAULT_LEVEL = "warning"

#: what TensorFlow prints at import that says nothing about the user's run
_NOTICES = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*"  # absl INFO / WARNING lines (oneDNN, cpu_feature_guard, …)
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$")
#: loggers of libraries whose INFO lines are not for a lossexp user
_CHATTY_LOGGERS = ("mlflow", "alembic", "absl", "tensorflow", "urllib3")
_filter_installed = False


class _PerRunRetracing(logging.Filter):
    """Drops TensorFlow's frequent-retracing warning about a function each run creates anew (Keras'
    train, test and predict steps; lossexp's monitors): several runs in one process (a sweep's jobs,
    a notebook's fits) trace one each, which TensorFlow counts as retracing one function."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message
                    and ("TensorFlowTrainer." in message or "<lossexp." in message))


def log_level() -> str:
    """``$LOSSEXP_LOG_LEVEL`` (``warning`` when unset); a :class:`ConfigError` for any other value."""
    value = os.environ.get(ENV, DEFAULT_LEVEL).strip().lower() or DEFAULT_LEVEL
    if value not in LEVELS:
        raise ConfigError(f"Invalid value for ${ENV}: expected one of {', '.join(LEVELS)}, got {value!r}")
    return value


def is_quiet() -> bool:
    return log_level() == DEFAULT_LEVEL


def tensorflow_notices(text: str) -> List[str]:
    """The lines of ``text`` that are TensorFlow start-up notices."""
    return [line for line in text.splitlines() if _NOTICES.match(line)]


def _without_notices(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not _NOTICES.match(line.rstrip("\n")))


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 (C++ and Python alike) and write back all but TF's notices."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = _without_notices(capture.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def configure() -> str:
    """Set the console's verbosity for this process and its children; returns the level in force.

    Call before TensorFlow and MLflow are imported (the CLI's ``main``, the Hydra task function).
    """
    global _filter_installed
    level = log_level()
    quiet = level == DEFAULT_LEVEL
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if quiet else "0")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING" if quiet else level.upper())
    if quiet:  # MLflow's "View run … at:" stdout lines for a server's runs; the summary has the link
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    _set_levels(level)
    if quiet and not _filter_installed:
        from lossexp.import_hooks import on_import

        on_import("tensorflow", around=filtered_stderr)
        _filter_installed = True
    return level


def _set_levels(level: str) -> None:
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if level == DEFAULT_LEVEL else getattr(logging, level.upper()))


def quiet_libraries() -> None:
    """The chatty libraries' loggers at the console's level in a process lossexp did not start (a
    notebook's ``lossexp.fit``), exporting nothing to its environment; MLflow is imported first, as
    its import sets its logger's level."""
    import mlflow  # noqa: F401

    _set_levels(log_level())


def hide_per_run_retracing() -> None:
    """Drop TensorFlow's warning that a function of Keras' steps or of lossexp's monitors was traced
    again, when quiet: every run makes its own, so the sixth run of a process would print it (twice:
    TensorFlow's handler and Hydra's) although nothing retraced within a run. A user's own functions
    still warn; ``LOSSEXP_LOG_LEVEL=info`` shows everything."""
    logger = logging.getLogger("tensorflow")
    if is_quiet() and not any(isinstance(f, _PerRunRetracing) for f in logger.filters):
        logger.addFilter(_PerRunRetracing())


@contextlib.contextmanager
def epoch_length_learned() -> Iterator[None]:
    """Keras' fit without its "Your input ran out of data" warning: a stream of unknown length that lossexp
    did not count (nothing needed its length) ends its first epoch so, as Keras then learns the epoch's
    steps; lossexp never asks for more steps than a pass holds (no ``steps_per_epoch``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        yield

