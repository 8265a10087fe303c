"""``lossexp ablate``: which component of the composition earns its place, as one sweep.

The ablation is an ordinary multirun (:mod:`lossexp.sweeps.callback`: a parent run, one child per
job, any Hydra launcher) over ``ablation.leave_out`` — ``null`` (the whole composition) and each
component of ``loss:`` — times ``trainer.seed`` (``--seeds N`` seeds from the config's own). Once
the sweep has ended, :func:`summarise` reads the children's ``objective`` metric and records on the
parent, for each component c, the change of the objective when c is left out, paired by seed:
Δc = objective(without c) − objective(whole), as its mean over the seeds (metric
``ablation/delta/<c>``) and its sample standard deviation (``ablation/delta_std/<c>``), with the
whole composition's mean objective (``ablation/objective/whole``), and the same table as the
artifact ``ablation/ablation.json`` and ``ablation/ablation.md`` (tag ``lossexp.ablation``: the
components). For an objective to minimize, Δc > 0 means the run was worse without c.

An ablation that stopped continues with the same command and ``--resume PARENT_ID``
(:mod:`lossexp.sweeps.resume_sweep`): its parent records the request (tag ``ablation.request``, set
through :data:`ENV` for the launching process's sweep callback), so a stopped sweep names
``lossexp ablate … --resume`` and the table is written once the sweep has ended, as for one that never stopped.

The objective defaults to ``val_loss/task`` here, not ``val_loss``: the total loss includes the
components' own terms, so it drops when one is left out whatever that does to the task.
"""
from __future__ import annotations

import json
import math
import os
import re
import shlex
import statistics
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lossexp import metric_names
from lossexp.errors import ConfigError
from lossexp.sweeps.objective import OBJECTIVE_METRIC

LEAVE_OUT = "ablation.leave_out"
SEED = "trainer.seed"
#: a value that sweeps (Hydra's choice(…), range(…), interval(…), glob(…)); a comma list sweeps too
SWEPT = re.compile(r"^\s*(choice|range|interval|glob)\(")
#: the tag of an ablation's parent run: its components, comma-separated
TAG = "lossexp.ablation"
#: the ablation's objective unless the user names one: the task loss alone
DEFAULT_OBJECTIVE = "val_loss/task"
WHOLE = "whole"
#: set by ``lossexp ablate`` for the launching process: its request (:func:`request`), which the sweep's
#: parent records as the tag :data:`REQUEST_TAG`
ENV = "LOSSEXP_ABLATION"
REQUEST_TAG = "ablation.request"


def request(overrides: Sequence[str], seeds: int) -> str:
    """What ``lossexp ablate`` was asked (JSON: the user's overrides, the seeds): the tag :data:`REQUEST_TAG`."""
    return json.dumps({"seeds": seeds, "overrides": list(overrides)})


def command_line(recorded: str, parent_id: str) -> str:
    """``lossexp ablate --seeds N OVERRIDES --resume PARENT_ID``: the command that continues the ablation
    whose parent recorded the request ``recorded``."""
    asked = json.loads(recorded)
    return (f"lossexp ablate --seeds {asked['seeds']} {' '.join(shlex.quote(o) for o in asked['overrides'])} "
            f"--resume {parent_id}")


def sweep_overrides(overrides: Sequence[str], components: Sequence[str], first_seed: int, seeds: int) -> List[str]:
    """The multirun's overrides: the user's, the left-out component and the seeds swept."""
    chosen = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in ("objective.metric", "objective.metrics")]
    objective = [] if chosen else [f"objective.metric={DEFAULT_OBJECTIVE}"]
    return [*overrides, *objective, f"{LEAVE_OUT}=null," + ",".join(components),
            f"{SEED}=" + ",".join(str(first_seed + i) for i in range(seeds))]


def check_request(overrides: Sequence[str], components: Sequence[str], seeds: int) -> None:
    """Raise :class:`ConfigError` for what an ablation cannot run (one line, before anything starts)."""
    if seeds < 1:
        raise ConfigError(f"Invalid value for --seeds: expected a whole number >= 1, got {seeds}")
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key in (LEAVE_OUT, SEED):
            raise ConfigError(f"Invalid override for lossexp ablate: {override}: lossexp ablate sweeps {key} itself "
                              f"(--seeds N for the seeds)")
        if SWEPT.match(value) or ("," in value and value[:1] not in "[{'\""):  # Hydra's "Ambiguous value" else
            raise ConfigError(f"Invalid override for lossexp ablate: {override}: expected one value (an ablation "
                              "sweeps the components left out and the seeds alone: one ablation per value, or "
                              "lossexp train -m for a grid)")
    if len(components) < 2:
        raise ConfigError(f"Invalid value for loss: expected at least 2 components to ablate, got "
                          f"{len(components)} ({', '.join(components) or 'none'}); e.g. loss=hist_avg+activity")


def _left_out(value: Optional[str]) -> str:
    return WHOLE if value in (None, "", "None", "null") else str(value)


def table(children: Sequence[Any], components: Sequence[str]) -> Dict[str, Any]:
    """The ablation table from the children runs (MLflow ``Run`` objects): per component, Δ per seed,
    mean and sample std; the whole composition's objective per seed. Unfinished children are left out."""
    found: Dict[str, Dict[str, float]] = {}
    for child in children:
        value = child.data.metrics.get(OBJECTIVE_METRIC)
        if child.info.status != "FINISHED" or value is None:
            continue
        found.setdefault(_left_out(child.data.params.get(LEAVE_OUT)), {})[child.data.params.get(SEED, "0")] = value
    whole = found.get(WHOLE, {})
    rows = []
    for component in components:
        runs = found.get(component, {})
        deltas = {seed: runs[seed] - whole[seed] for seed in sorted(runs) if seed in whole}
        values = list(deltas.values())
        rows.append({"component": component, "deltas": deltas, "n": len(values),
                     "mean": statistics.fmean(values) if values else math.nan,
                     "std": statistics.stdev(values) if len(values) > 1 else 0.0 if values else math.nan})
    return {"whole": whole, "whole_mean": statistics.fmean(whole.values()) if whole else math.nan, "rows": rows}


def markdown(summary: Dict[str, Any], metric: str, direction: str) -> str:
    lines = [f"Objective `{metric}` ({direction}); the whole composition: {summary['whole_mean']:.6g} "
             f"(mean over {len(summary['whole'])} seeds). Δ = objective without the component − whole, paired by seed.",
             "", "| left out | Δ mean | Δ std | seeds |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['component']} | {r['mean']:+.6g} | {r['std']:.3g} | {r['n']} |" for r in summary["rows"]]
    return "\n".join(lines) + "\n"


def summarise(uri: str, parent_run_id: str, components: Sequence[str]) -> Dict[str, Any]:
    """Record the ablation table on the parent run (metrics, artifacts, tag); returns the table."""
    from lossexp.sweeps.parent import children
    from lossexp.tracking import store

    client = store.open_client(uri)
    runs = children(client, parent_run_id)
    summary = table(runs, components)
    metric = runs[0].data.params.get("objective.metric", DEFAULT_OBJECTIVE) if runs else DEFAULT_OBJECTIVE
    direction = runs[0].data.params.get("objective.direction", "minimize") if runs else "minimize"
    values = {metric_names.ablation("objective", WHOLE): summary["whole_mean"]}
    for row in summary["rows"]:
        values[metric_names.ablation("delta", row["component"])] = row["mean"]
        values[metric_names.ablation("delta_std", row["component"])] = row["std"]
    store.log_metrics(client, parent_run_id, [(k, v, 0) for k, v in values.items() if math.isfinite(v)],
                      synchronous=True)
    store.set_tag(client, parent_run_id, TAG, ",".join(components))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "ablation.json").write_text(json.dumps({"metric": metric, "direction": direction,
                                                                 **summary}, indent=2) + "\n")
        (Path(folder) / "ablation.md").write_text(markdown(summary, metric, direction))
        client.log_artifacts(parent_run_id, folder, "ablation")
    return {"metric": metric, "direction": direction, **summary}


def find_parent(uri: str, experiment: str) -> Optional[str]:
    """The sweep parent this process launched last (tag ``lossexp.launcher.pid``)."""
    from lossexp.tracking import store

    client = store.open_client(uri)
    found = store.retrying(lambda: client.get_experiment_by_name(experiment))
    if found is None:
        return None
    query = f"tags.`lossexp.role` = 'sweep' and tags.`lossexp.launcher.pid` = '{os.getpid()}'"
    runs = store.retrying(lambda: client.search_runs([found.experiment_id], query, max_results=1,
                                                     order_by=["attributes.start_time DESC"]))
    return runs[0].info.run_id if runs else None


def read_table(parent: Any) -> List[Tuple[str, float, float]]:
    """(component, Δ mean, Δ std) recorded on an ablation's parent run (empty for another sweep)."""
    components = [c for c in parent.data.tags.get(TAG, "").split(",") if c]
    metrics = parent.data.metrics
    return [(c, metrics.get(metric_names.ablation("delta", c), math.nan),
             metrics.get(metric_names.ablation("delta_std", c), math.nan)) for c in components]
