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

COMPARED_SECTIONS = ("model", "data", "task", "loss", "optimizer", "trainer", "objective", "weighting", "ablation")
NOT_COMPARED = frozenset({"trainer.verbose", "trainer.log_every_n_steps", "trainer.steps_per_execution"})


def compared_params(flat_config: Mapping[str, Any]) -> Dict[str, Any]:
    """The params to log, from the flattened resolved config."""
    return {key: value for key, value in flat_config.items()
            if key.split(".", 1)[0] in COMPARED_SECTIONS and key not in NOT_COMPARED}
