"""What ``lossexp compare RUN …`` compares: one sweep's children (a parent alone), or the runs given, a
parent among them standing for its children, from any experiments of the store."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from lossexp.errors import ConfigError
from lossexp.reports import query

#: run ids named in the title of a comparison of several runs
TITLE_IDS = 6


@dataclass
class Selection:
    """The runs compared, in order; the keys that vary among them; the sweep's parent when one was given alone."""
    runs: List[Any]
    keys: List[str]
    parent: Optional[Any]
    title: str


def _values(run: Any) -> Dict[str, str]:
    return {**query.run_params(run), "loss": run.data.tags.get("loss", "")}


def varying_keys(runs: Sequence[Any]) -> List[str]:
    """The params (and ``loss``, the composition) whose value is not the same in every run, ``loss`` first;
    a component's options count only where every run has that key (a composition's difference is ``loss``)."""
    values = [_values(r) for r in runs]
    shared = set.intersection(*(set(v) for v in values)) if values else set()
    varying = [k for k in sorted(shared) if len({v[k] for v in values}) > 1]
    return sorted(varying, key=lambda k: k != "loss")


def select(client: Any, given: Sequence[str]) -> Selection:
    """The runs ``given`` name (ids or unique prefixes); unknown ones are one error naming all of them."""
    resolved, unknown = [], []
    for run_id in given:
        full = query.resolve_run_id(client, run_id)
        (resolved if full else unknown).append(full or run_id)
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        raise ConfigError(f"Unknown run{'s' if len(unknown) > 1 else ''} {names}: no run with that id "
                          "(lossexp runs lists the runs with their short ids; any unique prefix works)")
    from lossexp.sweeps.parent import children

    if len(resolved) == 1:
        parent = client.get_run(resolved[0])
        try:
            runs = query.sweep_children(client, parent, given[0])
        except ConfigError as error:
            raise ConfigError(f"{error} (to compare single runs, give two or more)") from None
        return Selection(runs, query.sweep_keys(parent), parent, f"{parent.info.run_name} [{parent.info.status}]")
    runs, seen = [], set()
    for run_id in resolved:
        family = children(client, run_id)
        ordered = sorted(family, key=lambda r: (int(r.data.tags.get("sweep.job", "0") or 0), r.info.start_time))
        for run in ordered or [client.get_run(run_id)]:
            if run.info.run_id not in seen:
                seen.add(run.info.run_id)
                runs.append(run)
    shown = ", ".join(r.info.run_id[:query.SHORT_ID] for r in runs[:TITLE_IDS]) + (", …" if len(runs) > TITLE_IDS else "")
    return Selection(runs, varying_keys(runs), None, f"{len(runs)} runs: {shown}")
