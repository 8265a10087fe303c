"""The ``lossexp`` command.

``lossexp train [hydra flags] [overrides]`` is a real ``@hydra.main`` app (multirun, ``--cfg``,
``--info``, shell completion). Before Hydra sees the arguments, the CLI rewrites ``loss=a+b``
into Hydra's list syntax and composes and validates every job's config, so that a mistake is
answered with one line and exit status 2 before anything runs or is logged.

Only ``train`` imports TensorFlow, and only once the config is valid.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from lossexp.errors import EXIT_BAD_INPUT, ConfigError

COMMANDS = {
    "train": "train one run (or a sweep with -m) from Hydra overrides, recorded in MLflow; "
             "--from-run RUN_ID trains a logged run's config again; --resume RUN_ID continues a run that "
             "stopped from its last epoch (-m … --resume PARENT_ID a sweep, --retry-failed its failed jobs too)",
    "evaluate": "load a saved model (MODEL: .keras file, model directory, runs:/ID/model, models:/ID) "
                "and report its loss and metrics on the data's validation split",
    "components": "list models, data sets, optimizers and loss components with their options",
    "new": "scaffold a part of your own project: lossexp new component|model|data NAME (its code, YAML and a test that passes)",
    "ablate": "one sweep of the whole composition and each composition with one component left out, "
              "x --seeds N; the parent run records the objective's change per component",
    "runs": "table of recorded runs (--experiment E, --sweep PARENT)",
    "compare": "a sweep's children (or several runs) side by side: tables and plots, seeds averaged, histories; "
               "a sweep's logged to its parent run",
    "ui": "serve the MLflow UI on the project's store at 127.0.0.1 (--port)",
}
#: commands that may load TensorFlow or MLflow: their notices are silenced (lossexp.quiet)
QUIET = ("train", "ablate", "evaluate", "runs", "compare", "ui")
#: commands implemented in lossexp.reports (each module has main(argv)), imported only when used
REPORTS = {"runs": "lossexp.reports.runs", "compare": "lossexp.reports.compare", "ui": "lossexp.reports.ui"}


def _fail(message: str) -> int:
    print(f"lossexp: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossexp",
        description="Config-driven loss-function experiments in Keras 3, tracked in MLflow.",
        epilog="Examples:\n  lossexp train loss=hist_avg+activity model=cnn\n"
               "  lossexp train -m loss=hist_avg+activity,activity loss.activity.weight=0.01,0.1\n"
               "  lossexp train --cfg job loss=hist_avg\n  lossexp components hist_avg\n"
               "  lossexp evaluate runs:/RUN_ID/model\n"
               "  lossexp new component my_term   (lossexp new model my_net, lossexp new data my_rows)\n"
               "  lossexp ablate --seeds 3 loss=hist_avg+activity hydra/launcher=joblib\n"
               "  lossexp runs --sweep PARENT\n  lossexp compare PARENT\n  lossexp ui --port 5000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _components(args: Sequence[str]) -> int:
    from lossexp.catalog import render

    if args and args[0] in ("-h", "--help"):
        print("usage: lossexp components [NAME]\n\n" + COMMANDS["components"])
        return 0
    try:
        print(render(args[0] if args else None), end="")
    except KeyError as exc:
        return _fail(exc.args[0])
    except ConfigError as exc:  # the project's pyproject.toml or one of its modules
        return _fail(str(exc))
    return 0


def _guarded(module: str, args: List[str]) -> int:
    """``module.main(args)``, a :class:`ConfigError` answered with one line and exit status 2."""
    import importlib

    try:
        return importlib.import_module(module).main(args)
    except ConfigError as exc:
        return _fail(str(exc))


def _hydra_args(args: List[str]) -> argparse.Namespace:
    """Hydra's own flags and the overrides, in any order (``lossexp train a=1 -m b=2,3``).

    A flag argparse does not know is a :class:`ConfigError` (one line), not argparse's usage dump.
    """
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()

    def error(message: str) -> None:
        raise ConfigError(f"lossexp train: {message} (see lossexp train --help)")

    parser.error = error  # type: ignore[method-assign]
    parsed = parser.parse_intermixed_args(args)
    modes = {"--run": parsed.run, "--multirun": parsed.multirun, "--cfg": parsed.cfg,
             "--info": parsed.info, "--shell-completion": parsed.shell_completion}
    given = [flag for flag, value in modes.items() if value]
    if len(given) > 1:  # Hydra would raise a ValueError with a traceback
        error(f"{' and '.join(given)} cannot be combined: give at most one of {', '.join(modes)}")
    return parsed


def hydra_argv(args: List[str], ablate: bool = False) -> List[str]:
    """The arguments ``lossexp train ARGS`` hands Hydra, once every check has passed.

    ``--from-run`` is resolved, ``loss=a+b`` rewritten, and every job composed and validated (a
    sweep's networks built, its objectives checked) before Hydra sees anything; a mistake is a
    :class:`ConfigError`. ``ablate``: the sweep is ``lossexp ablate``'s (``--resume`` continues an
    ablation's parent only).
    """
    from lossexp.overrides import rewrite_loss, rewrite_override
    from lossexp.config import ObjectiveConfig, TrainerConfig
    from lossexp.precheck import check_builds, check_jobs, sweeper_params
    from lossexp.registry import available

    from lossexp.sweeps import resume_check, resume_sweep

    from_run_id = sweep_parent = None
    replayed = False  # --from-run: the jobs compose from the run's config, in the directory rerun_args writes
    retry_failed, args = resume_check.split_retry(args)
    flags = {token.split("=")[0] for token in args}
    multirun = bool({"-m", "--multirun"} & set(args))
    if {"--from-run", "--resume"} <= flags:
        raise ConfigError("--from-run and --resume cannot be combined: --resume continues a run, --from-run trains "
                          "its config again as a new run")
    if retry_failed and not ("--resume" in flags and multirun):
        raise ConfigError(f"{resume_sweep.RETRY_FLAG} runs a sweep's failed jobs again as it continues: give it with "
                          f"-m … --resume PARENT_ID")
    if "--resume" in flags and multirun:  # continue a stopped grid sweep under its parent run
        from lossexp.tracking import from_run

        sweep_parent, args = from_run.split_flag(args, resume_check.FLAG)
        sweep_parent = from_run.full_run_id(sweep_parent, args)
    elif "--from-run" in flags:  # re-run a logged config
        from lossexp.tracking import from_run

        from_run_id, args = from_run.split_flag(args)
        from_run_id = from_run.full_run_id(from_run_id, args)
        args = from_run.rerun_args(from_run_id, args, multirun=bool({"-m", "--multirun"} & set(args)))
        replayed = True
    elif "--resume" in flags:  # continue a stopped run from its checkpoint
        from lossexp.tracking import from_run, resume

        from_run_id, args = from_run.split_flag(args, resume.FLAG)
        from_run_id = from_run.full_run_id(from_run_id, args)
        resume_check.check_not_a_parent(from_run_id, from_run.store_uri([a for a in args if "=" in a]))
        args = resume.resume_args(from_run_id, args)
    hydra_args = _hydra_args(args)
    known = available("loss")
    rewritten = rewrite_loss(hydra_args.overrides, known)
    if sweep_parent is not None:
        from lossexp.tracking import from_run

        resume_check.check_parent(sweep_parent, from_run.store_uri(rewritten), rewritten,
                                  sweeper_params(rewritten, hydra_args.config_name), ablate=ablate)
        os.environ[resume_sweep.ENV] = sweep_parent  # the launching process's sweep callback reopens it
        os.environ[resume_sweep.RETRY_ENV] = "1" if retry_failed else ""
    informational = hydra_args.help or hydra_args.hydra_help or hydra_args.info or hydra_args.shell_completion
    if not informational and (from_run_id is None or replayed):  # --resume validated its own config
        try:
            jobs = check_jobs(rewritten, multirun=hydra_args.multirun, config_name=hydra_args.config_name,
                              destinations=not hydra_args.cfg,  # --cfg prints the config, writes nothing
                              config_dir=Path(hydra_args.config_dir) if replayed else None)
        except ConfigError as error:  # a replayed run's part of a project this directory does not see: where it is
            if not replayed:
                raise
            from lossexp import project
            from lossexp.tracking.from_run import PROJECT_ENV

            raise project.located(error, os.environ.get(PROJECT_ENV)) from None
        if hydra_args.multirun and not hydra_args.cfg:  # a sweep: no job starts until every job's network builds
            check_builds(jobs)  # (an Optuna sweep's: at its search space's two ends; a sweep of one job too)
        # a sweep's objectives, and a single run's set by hand: a misspelled objective.metric failed it after
        # training; early stopping's monitor set by hand: a misspelled one failed the run after its first epoch.
        # Each job that records other metrics or asks for others is checked (a sweep over the monitor or the
        # objective: its second job's failed after the first trained)
        first = jobs[0].config
        by_hand = first.objective != ObjectiveConfig() or (
            first.trainer.patience is not None and first.trainer.monitor != TrainerConfig().monitor)
        if not hydra_args.cfg and (hydra_args.multirun or by_hand):
            from lossexp.sweeps.checks import check_objectives_recorded

            asked = {}
            for job in jobs:
                config = job.config
                asked.setdefault((repr(config.objective), config.trainer.monitor, config.trainer.patience is None,
                                  config.model.name, config.data.name, tuple(sorted(config.loss))), job)
            for job in asked.values():
                try:
                    check_objectives_recorded(job.config)  # TensorFlow, only for objectives beyond val_loss/loss
                except ConfigError as error:
                    raise (job.refused(error) if len(asked) > 1 else error) from None
    # Hydra's flags first, then the user's overrides in their rewritten form (Hydra's parser
    # wants the flags before the overrides).
    pending = list(hydra_args.overrides)
    flags, overrides = [], []
    for token in args:
        if pending and token == pending[0]:
            overrides += rewrite_override(pending.pop(0), known)
        else:
            flags.append(token)
    return [*flags, *overrides]


def _train(args: List[str], ablate: bool = False) -> int:
    import lossexp.sweeps  # noqa: F401 (silences Hydra's schema warning for conf/hydra/launcher/joblib.yaml)
    from lossexp import project
    from lossexp.registry import register_config_nodes

    try:
        project.export()  # sweep workers find the same project, whatever their working directory
        project.check_names()
        if not {"-h", "--help", "--info", "-sc", "--shell-completion"} & set(args):
            project.load()  # the user's modules register their parts
        register_config_nodes()  # parts of installed packages and the project that have no YAML
        argv = hydra_argv(args, ablate)
    except ConfigError as exc:
        return _fail(str(exc))
    sys.argv = ["lossexp", *argv]
    from lossexp.hydra_app import hydra_train
    from lossexp.errors import Terminated, signals_unmasked

    try:
        with signals_unmasked():
            hydra_train()
    except (KeyboardInterrupt, Terminated) as exc:
        if getattr(exc, "sweep_parent_id", None) is None:
            raise  # before any run existed (_stoppable says so)
        # a sweep's launching process, its parent open (its jobs report their own; the parent's line follows)
        if isinstance(exc, KeyboardInterrupt):
            print("lossexp: interrupted (SIGINT)", file=sys.stderr)
            return 128 + signal.SIGINT
        print(f"lossexp: {exc}; the sweep's parent run ended KILLED", file=sys.stderr)
        return 128 + exc.signum
    from lossexp.sweeps.callback import closed_status

    return 1 if closed_status[-1:] == ["FAILED"] else 0  # a sweep that completed with its parent FAILED


ABLATE_HELP = """usage: lossexp ablate [--seeds N] [--resume PARENT_ID [--retry-failed]] [overrides ...]

One sweep (a parent run and a child run per job, any Hydra launcher: hydra/launcher=joblib) of
the whole composition and of each composition with one component of loss: left out
(ablation.leave_out=null,<c1>,<c2>,...), each with N seeds (trainer.seed, from the config's own).
When it ends, the parent run records the objective's change per left-out component, paired by
seed: delta = objective without the component - objective of the whole composition, mean and
standard deviation over the seeds (metrics ablation/delta/<c>, ablation/delta_std/<c>; artifact
ablation/ablation.md and .json). lossexp compare PARENT plots it.

The objective is objective.metric, val_loss/task unless you set it: val_loss includes the
components' own terms, so it drops when one is left out whatever happens to the task.

An ablation that stopped (Ctrl-C, SIGTERM, a crash) continues with the same command and
--resume PARENT_ID, as lossexp train -m ... --resume does a sweep; its table is written at the end.

options:
  --seeds N             seeds per composition (default 1; 2 or more for a standard deviation)
  --resume PARENT_ID    continue the ablation of that parent run (the same overrides and --seeds)
  --retry-failed        with --resume: run its failed jobs again
  overrides             as for lossexp train (loss=a+b, model=..., hydra/launcher=joblib, ...)

example:
  lossexp ablate --seeds 3 loss=hist_avg+activity trainer.epochs=5 hydra/launcher=joblib
"""


def _ablate(args: List[str]) -> int:
    if {"-h", "--help"} & set(args):
        print(ABLATE_HELP, end="")
        return 0
    from lossexp import project
    from lossexp.overrides import rewrite_loss
    from lossexp.precheck import compose_validated
    from lossexp.registry import available, register_config_nodes
    from lossexp.sweeps import ablation
    from lossexp.tracking import store

    from lossexp.sweeps import resume_check, resume_sweep

    seeds, overrides, resume = 1, [], []  # resume: the flags handed on to lossexp train -m
    try:
        tokens = iter(args)
        for token in tokens:
            flag = token.split("=", 1)[0]
            if flag in ("--seeds", resume_check.FLAG):
                value = token.split("=", 1)[1] if "=" in token else next(tokens, "")
                if flag == resume_check.FLAG:
                    resume += [flag, value] if value else [flag]  # no id: lossexp train's one line
                    continue
                try:
                    seeds = int(value)
                except ValueError:
                    raise ConfigError(f"Invalid value for --seeds: expected a whole number >= 1, "
                                      f"got {value!r}") from None
            elif token == resume_sweep.RETRY_FLAG:
                resume.append(token)
            elif token.startswith("-"):
                raise ConfigError(f"lossexp ablate: unknown option {token} (valid: --seeds N, --resume PARENT_ID, "
                                  f"{resume_sweep.RETRY_FLAG}; see lossexp ablate --help)")
            else:
                overrides.append(token)
        if resume_sweep.RETRY_FLAG in resume and resume_check.FLAG not in resume:
            raise ConfigError(f"{resume_sweep.RETRY_FLAG} runs an ablation's failed jobs again as it continues: "
                              f"give it with {resume_check.FLAG} PARENT_ID")
        project.export()
        project.check_names()
        project.load()
        register_config_nodes()
        config = compose_validated(rewrite_loss(overrides, available("loss")))
        components = list(config.loss)
        ablation.check_request(overrides, components, seeds)
    except ConfigError as exc:
        return _fail(str(exc))
    os.environ[ablation.ENV] = ablation.request(overrides, seeds)  # the parent records it (a resume names lossexp ablate)
    code = _train(["-m", *ablation.sweep_overrides(overrides, components, config.trainer.seed, seeds), *resume],
                  ablate=True)
    if code != 0:
        return code
    uri = store.resolve_uri(config.tracking.uri, Path(os.getcwd()))
    parent = (os.environ[resume_sweep.ENV] if resume  # the parent's full id, as lossexp train -m found it
              else ablation.find_parent(uri, config.tracking.experiment))
    if parent is None:
        return _fail("the ablation's sweep ended without a parent run to summarise (tracking.enabled=false?)")
    found = ablation.summarise(uri, parent, components)
    print(ablation.markdown(found, found["metric"], found["direction"]), end="")
    print(f"lossexp: ablation table logged to run {parent} (ablation/ablation.md); plot it: lossexp compare {parent}")
    return 0


def _stoppable(command: Callable[[List[str]], int], args: List[str]) -> int:
    """``command`` with SIGTERM raised as :class:`~lossexp.errors.Terminated` from the start: stopped
    (Ctrl-C, SIGTERM) before a run exists, one line says nothing was recorded, exit 128 + the
    signal; once a run or a sweep's parent exists, its own handling reports how it ended."""
    from lossexp.errors import Terminated, signals_unmasked
    from lossexp.tracking.termination import terminate_on_signals

    try:
        with terminate_on_signals():
            with signals_unmasked():
                return command(args)
    except KeyboardInterrupt:
        print("lossexp: interrupted (SIGINT); stopped before its run started: nothing was recorded", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated as exc:
        print(f"lossexp: {exc}; stopped before its run started: nothing was recorded", file=sys.stderr)
        return 128 + exc.signum


def _strip_train_from_completion_line() -> None:
    """Hydra completes ``COMP_LINE`` after the program name; hide our ``train`` subcommand."""
    line = os.environ.get("COMP_LINE", "")
    program, sep, rest = line.partition(" ")
    if rest.startswith("train"):
        os.environ["COMP_LINE"] = program + sep + rest[len("train"):].lstrip()
        cut = len(line) - len(os.environ["COMP_LINE"])
        os.environ["COMP_POINT"] = str(max(int(os.environ.get("COMP_POINT", len(line))) - cut, 0))


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-sc", "--shell-completion"):
        _strip_train_from_completion_line()
        argv = ["train", *argv]  # Hydra's completion script calls the program without "train"
    if not argv or argv[0] in ("-h", "--help"):
        _top_parser().print_help()
        return 0
    command, rest = argv[0], argv[1:]
    if command in QUIET:
        from lossexp import import_hooks, quiet

        try:
            quiet.configure()  # before TensorFlow or MLflow load, here and in a sweep's workers
            import_hooks.import_keras_without_sklearn()
        except ConfigError as exc:
            return _fail(str(exc))
    if command in ("train", "ablate"):
        return _stoppable(_train if command == "train" else _ablate, rest)
    if command == "components":
        return _components(rest)
    if command == "evaluate":
        return _guarded("lossexp.evaluate", rest)
    if command == "new":
        return _guarded("lossexp.scaffold", rest)
    if command in REPORTS:
        import importlib

        return importlib.import_module(REPORTS[command]).main(rest)
    return _fail(f"Unknown command {command!r}: valid choices are {', '.join(COMMANDS)}")


def run() -> None:
    """The ``lossexp`` console command: :func:`main`, then the process ends without the interpreter's
    teardown (:mod:`lossexp.fast_exit`; 1–2.5 s after every training run). A reader that closed
    the pipe early (``lossexp train --help | head -2``) ends it quietly, as it would ``cat``: exit
    status 128 + SIGPIPE, no traceback."""
    from lossexp.fast_exit import exit_now

    try:
        code = main()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit has nowhere to go
        code = 128 + signal.SIGPIPE
    exit_now(code)


if __name__ == "__main__":
    run()
