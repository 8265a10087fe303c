"""``lossexp train --resume RUN_ID [trainer.epochs=N]``: continue a run that stopped, in the same run.

A run that ended KILLED (Ctrl-C, a scheduler's SIGTERM) or FAILED (an exception, the OOM killer,
a reboot: reaped once its heartbeat is stale) keeps the checkpoint of its last finished epoch
(:mod:`lossexp.training.checkpoint`; its directory is the run's tag ``lossexp.checkpoint``). This
module checks that the run can continue — it exists, is not running or finished, has a checkpoint
and epochs left — and returns the Hydra arguments that train its logged config (read as data, as
``--from-run`` reads it) in its own output directory, with nothing changed but ``trainer.epochs``
(to train longer) and where the store is. The training process restores the checkpoint and
records into the same MLflow run (:func:`lossexp.train.execute`). No TensorFlow import.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from lossexp.errors import invalid_value
from lossexp.tracking import from_run
from lossexp.training import checkpoint_files

FLAG = "--resume"
#: what an override may change in the run it continues
CHANGEABLE = ("trainer.epochs", "tracking.uri")


def resume_args(run_id: str, args: Sequence[str]) -> List[str]:
    """Hydra arguments that continue ``run_id`` (see the module docstring); one-line ConfigError if it
    cannot continue."""
    overrides = [a for a in args if not a.startswith("-") and "=" in a]
    changed = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] not in CHANGEABLE]
    if changed:
        raise invalid_value(FLAG, f"overrides of {', '.join(CHANGEABLE)} only (the run continues as it was "
                            "configured; --from-run RUN_ID trains it again with changes)", changed[0])
    epochs = next((o.split("=", 1)[1] for o in reversed(overrides) if o.lstrip("+").startswith("trainer.epochs=")),
                  None)
    if epochs is not None and not epochs.strip().isdigit():
        raise invalid_value("trainer.epochs", "a whole number of epochs", epochs)
    directory = checkpoint_of(run_id, from_run.store_uri(overrides), int(epochs) if epochs is not None else None)
    hydra = from_run.rerun_args(run_id, [*args, f"hydra.run.dir={directory.parent}"], multirun=False)
    os.environ.pop(from_run.ENV, None)  # the same run, not a re-run of it
    os.environ.pop(from_run.EXPERIMENT_ENV, None)
    os.environ[checkpoint_files.RESUME_ENV] = run_id
    return hydra


def checkpoint_of(run_id: str, uri: str, epochs: Optional[int] = None) -> Path:
    """The checkpoint directory of ``run_id`` in the store at ``uri``, once it is known that the run
    can continue to ``epochs`` (None: its own): it exists, stopped (a RUNNING run whose heartbeat is
    stale is reaped first), has a checkpoint and epochs left. Else one line."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from lossexp.tracking import store
    from lossexp.tracking.heartbeat import PROCESS_TAG, process_is_gone
    from lossexp.tracking.reaper import end_dead, reap

    from_run.logged_config(run_id, uri, FLAG)  # the run exists and has its config: else one line
    client = store.open_client(uri)
    run = client.get_run(run_id)
    if run.info.status == "RUNNING":  # its process may have died without ending it (kill -9, OOM killer)
        if process_is_gone(run):  # on this host: known at once
            end_dead(client, run_id, f"its process {run.data.tags[PROCESS_TAG]} is gone")
        else:  # elsewhere: once its heartbeat is stale
            reap(client, [run.info.experiment_id], float(run.data.params.get("tracking.stale_after_s", 300)))
        run = client.get_run(run_id)
    if run.info.status in ("RUNNING", "FINISHED"):
        hint = ("it is still training (a process on another host that died is marked FAILED once its heartbeat "
                "is tracking.stale_after_s old: lossexp runs --reap)" if run.info.status == "RUNNING"
                else f"nothing to continue (train it again, longer: --from-run {run_id} trainer.epochs=…)")
        raise invalid_value(FLAG, "a run that stopped (KILLED or FAILED)", f"{run_id}, {run.info.status}: {hint}")
    directory = run.data.tags.get(checkpoint_files.TAG)
    progress = checkpoint_files.progress(Path(directory)) if directory else None
    if progress is None:
        raise invalid_value(FLAG, "a run with a checkpoint", f"{run_id}, which has none (it stopped before its first "
                            "epoch ended, ran with trainer.checkpoint=false, or its directory "
                            f"{directory or '(none)'} is gone)")
    configured = int(run.data.params.get("trainer.epochs", 0))
    parent = run.data.tags.get(MLFLOW_PARENT_RUN_ID)  # a sweep's child
    if parent and epochs is not None and epochs != configured:  # its params (immutable) would say otherwise
        raise invalid_value("trainer.epochs", f"the {configured} epochs of its sweep: run {run_id} is a sweep's "
                            f"child, compared with its siblings by its params (continue it as it was, or the sweep: "
                            f"lossexp train -m … --resume {parent}; --from-run {run_id} trains it again, longer)", epochs)
    epochs = epochs if epochs is not None else configured
    if progress["epochs"] >= epochs:
        raise invalid_value("trainer.epochs", f"more than the {progress['epochs']} epochs run {run_id} finished "
                            "(to train it longer)", epochs)
    return Path(directory)


def check_same_config(run_id: str, uri: str, resolved: Dict[str, Any]) -> None:
    """A run continued from Python (``lossexp.fit(…, resume=RUN_ID)``) is given its config again by
    the call: it must be the run's, but for :data:`CHANGEABLE` (one line naming the first key that
    differs, its two values)."""
    from lossexp.replay import load_replayed_config
    from lossexp.tracking import store

    logged = store.flatten(load_replayed_config(from_run.logged_config(run_id, uri, FLAG), f"run {run_id!r}"))
    given = store.flatten(resolved)
    # a network or data given in Python is named by Keras (functional_3 when built again): its variables
    # are checked against the checkpoint's instead
    named = [f"{part}.name" for part in ("model", "data") if given.get(f"{part}.source") == "python"]
    for key in sorted(set(logged) | set(given)):
        if key.startswith(("tracking.", *CHANGEABLE)) or key in named or str(logged.get(key)) == str(given.get(key)):
            continue
        raise invalid_value(key, f"the value run {run_id} trained with, {logged.get(key)!r} (a run continues as it "
                            "was configured)", given.get(key))
