"""The ``@hydra.main`` application behind ``lossexp train``.

A :class:`~lossexp.errors.ConfigError` raised inside a job (e.g. a layer name the network does
not have, which is only known once the network is built) is printed as one line and ends the
process with status 2, like the CLI's own checks; no MLflow run exists at that point — except
when the project's own code (a model's ``call``, a component's ``term``) fails during training
(:func:`lossexp.project.user_code_errors`): one line naming its file and line, the run FAILED.

Training that stops on a non-finite loss is one line and status 1 (its run ended FAILED); a
run interrupted by SIGINT / SIGTERM ended KILLED and the process exits 130 / 143
(128 + the signal), without a traceback. In a sweep, a job that fails either way says so in its
line, and the sweep's other jobs run unless its sweeper stops it (an Optuna study past
``hydra.sweeper.max_failure_rate`` says so) (:class:`JobFailed`).
"""
from __future__ import annotations

import signal
import sys

import hydra
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from lossexp import CONF_DIR
from lossexp.errors import EXIT_BAD_INPUT, ConfigError, NonFiniteLoss, Terminated, signals_unmasked

EXIT_FAILED = 1


class JobFailed(CompactHydraException):
    """A sweep's job that failed after saying why in its own line: Hydra records the job FAILED and
    runs the sweep's other jobs (exiting the process would end them), then reports this one line —
    Hydra's compact form — where it would print the job's traceback."""


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_train(cfg: DictConfig) -> float:
    from lossexp import imported_objects, import_hooks, keras_objects, quiet

    quiet.configure()  # a sweep's worker process (joblib/loky, submitit, Ray) starts here
    import_hooks.import_keras_without_sklearn()
    keras_objects.leave_registration_to_training()
    with imported_objects.uncollected():  # the run imports Keras anyway: here, frozen with the rest
        import keras  # noqa: F401
        from lossexp.sweeps.resume_sweep import FailedBefore
        from lossexp.train import run

        imported_objects.freeze_once()

    try:
        with signals_unmasked():  # a SIGTERM's exception that library code hid as it unwound is the SIGTERM
            return run(cfg)
    except ConfigError as exc:
        print(f"lossexp: error: {exc}", file=sys.stderr)
        if _in_sweep():
            raise JobFailed("lossexp: this job failed (its line is above)") from None
        sys.exit(EXIT_BAD_INPUT)
    except FailedBefore as exc:  # a resumed sweep's job that failed in an earlier attempt
        print(f"lossexp: {exc}", file=sys.stderr)
        raise JobFailed("lossexp: a job failed in an earlier attempt of the sweep (its line is above)") from None
    except NonFiniteLoss as exc:
        print(f"lossexp: error: non-finite loss: {exc} (the run ended FAILED)", file=sys.stderr)
        if _in_sweep():
            raise JobFailed("lossexp: this job's run ended FAILED (non-finite loss)") from None
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt as exc:
        print(f"lossexp: interrupted (SIGINT); {_what_became_of_the_run(exc)}", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except Terminated as exc:
        print(f"lossexp: {exc}; {_what_became_of_the_run(exc)}", file=sys.stderr)
        sys.exit(128 + exc.signum)


def _what_became_of_the_run(stopped: BaseException) -> str:
    """``the run ended KILLED`` (and `` (continue it: lossexp train --resume RUN_ID)`` when it kept a
    checkpoint) — or, stopped before its MLflow run was created, that nothing was recorded."""
    status = getattr(stopped, "run_status", None)
    if status is None:
        return "stopped before its run started: nothing was recorded"
    command = None if _in_sweep() else getattr(stopped, "resume_command", None)  # the sweep's own line says how
    return f"the run ended {status}" + (f" (continue it: {command})" if command else "")
