"""Which config keys a run logs as MLflow params: the ones a reader compares between runs.

The model, data, task, loss, optimizer, weighting and trainer sections (and the objective a sweep reads
back, and an ablation's left-out component),
flattened (``loss.hist_avg.weight``). Left out: ``tracking.*`` (where and how the run is
recorded: URI, heartbeat, parent id) and the trainer keys that change the console or the logging
cadence but not what is learned. The whole resolved config stays in the ``config.yaml``
artifact, which ``--from-run`` and ``lossexp evaluate`` read.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

#: a tag standing for a param whose value a resumed run changed (``trainer.epochs``): MLflow keeps a
#: param's first value, so readers take the run's params with these over them (:func:`run_params`)
CHANGED_PARAM_PREFIX = "lossexp.param."

COMPARED_SECTIONS = ("model", "data", "task", "loss", "optimizer", "trainer", "objective", "weighting", "ablation")
NOT_COMPARED = frozenset({"trainer.verbose", "trainer.log_every_n_steps", "trainer.steps_per_execution"})


def compared_params(flat_config: Mapping[str, Any]) -> Dict[str, Any]:
    """The params to log, from the flattened resolved config."""
    return {key: value for key, value in flat_config.items()
            if key.split(".", 1)[0] in COMPARED_SECTIONS and key not in NOT_COMPARED}


def changed_params(logged: Mapping[str, str], params: Mapping[str, Any]) -> Dict[str, str]:
    """The tags that record ``params`` (a resumed run's, flattened) where they differ from the ``logged``
    params of its first start: ``{"lossexp.param.trainer.epochs": "8"}``."""
    return {f"{CHANGED_PARAM_PREFIX}{key}": str(value) for key, value in params.items()
            if key in logged and logged[key] != str(value)}


def run_params(run: Any) -> Dict[str, str]:
    """An MLflow run's params, with the values its resume changed (its ``lossexp.param.*`` tags) over them."""
    tags = run.data.tags
    return {**run.data.params, **{key[len(CHANGED_PARAM_PREFIX):]: value for key, value in tags.items()
                                  if key.startswith(CHANGED_PARAM_PREFIX)}}
