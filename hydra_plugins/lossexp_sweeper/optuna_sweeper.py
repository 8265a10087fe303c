"""``hydra/sweeper=lossexp_optuna``: Optuna (>= 4) under Hydra's ``-m``, lossexp's own thin plugin.

hydra-optuna-sweeper 1.3 pins ``optuna<3``; this plugin keeps its user contract
(``hydra.sweeper.params`` with ``interval``/``range``/``choice``/``tag(log, …)``, ``n_trials``,
``n_jobs``, any launcher) and adds samplers and pruners by name, several objectives and studies
that resume. Hydra imports every module under ``hydra_plugins`` when it starts, so this one only
registers the config schema and defers the work (and Optuna's import) to
:mod:`lossexp.sweeps.optuna_sweep`. (No ``from __future__ import annotations``: Hydra executes
plugin modules outside ``sys.modules``, where dataclasses cannot resolve string annotations.)
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class LossexpOptunaSweeperConf:
    """``hydra.sweeper.*`` (documented in docs/sweeps.md, "Sweeps with Optuna")."""

    _target_: str = "hydra_plugins.lossexp_sweeper.optuna_sweeper.OptunaSweeper"
    #: tpe (multivariate), gp, cmaes, random, grid, nsgaii
    sampler: str = "tpe"
    sampler_options: Dict[str, Any] = field(default_factory=dict)
    seed: Optional[int] = None
    #: none, median, percentile, successive_halving, hyperband (each trial reports every epoch)
    pruner: str = "none"
    pruner_options: Dict[str, Any] = field(default_factory=dict)
    #: an Optuna storage URL; null: SQLite beside the tracking store (outputs/optuna.db)
    storage: Optional[str] = None
    #: null: a fresh study per sweep; a name: create it, or continue it
    study_name: Optional[str] = None
    #: trials the study should have ended (complete, pruned or failed), this run's and earlier ones'
    n_trials: int = 20
    #: trials asked per batch (the launcher runs a batch: one after another, or in parallel)
    n_jobs: int = 1
    #: failed trials tolerated per batch (0.0: the first failure stops the sweep)
    max_failure_rate: float = 0.0
    #: the search space (empty: the command line's sweep overrides alone); a mapping that
    #: ``hydra.sweeper.params={key: …}`` fills (OmegaConf cannot merge a mapping into a null)
    params: Dict[str, str] = field(default_factory=dict)
    #: set by the sweeper for each job: the Optuna trial number it runs
    trial: Optional[int] = None


ConfigStore.instance().store(group="hydra/sweeper", name="lossexp_optuna", node=LossexpOptunaSweeperConf,
                             provider="lossexp")


class OptunaSweeper(Sweeper):
    """Hands the sweep to :class:`lossexp.sweeps.optuna_sweep.OptunaSweep`."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.impl: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from lossexp.sweeps.optuna_sweep import OptunaSweep

        self.impl = OptunaSweep(self.settings, hydra_context, task_function, config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.impl.run(arguments)
