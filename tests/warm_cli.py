"""A warm ``lossexp`` command for the tests: one process per pytest worker imports TensorFlow, Keras,
MLflow, Hydra and lossexp once, then forks a child for each command a test runs. A second, light one
imports only what every command imports before it reads its arguments, for commands that must be
refused before TensorFlow loads (its children show that they never import it, as a new interpreter would).

Importing TensorFlow and MLflow costs a fresh ``lossexp train`` process 5–7 s of CPU before it does
anything; a test suite that runs ~100 such commands on 2 cores spends a third of its time there. The
forked child is a separate process that runs the real console command (``lossexp.cli.run``: its exit
status, its own file descriptors 0–2 on files, its working directory and environment, the interpreter
ended as the console command ends it) — only the imports are already done. Tests of what happens
*at* import time (TensorFlow's notices silenced, what a command imports, ``$LOSSEXP_LOG_LEVEL``) run a
fresh interpreter instead (``run_cli(..., fresh=True)``). A child handles Ctrl-C as a console command
started from a terminal does (KeyboardInterrupt).

TensorFlow is imported but never initialised here (no eager context, no op run, checked before the
first fork), so each child starts TensorFlow's runtime itself, as a fresh process does.

Protocol (this module run as a script): one JSON request per line on stdin ``{"args", "cwd", "env",
"stdout", "stderr"}``; for each, one line ``{"pid": P}`` when the child is forked, then
``{"returncode": R}`` when it has ended (a signal: ``-N``, as ``subprocess`` reports it). A request
``{"together": [request, ...]}`` forks one child per request at once (commands that run side by
side): a ``{"pid": P}`` line for each as it is forked, then a ``{"returncode": R}`` line for each in
the same order.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

#: modules a training command imports, imported once by the warm process: those its first lines import,
#: then those imported on the way (MLflow's SQL store alone is 0.8 s of CPU; all of the second group
#: about 1 s a command, found by listing what ``sys.modules`` gains in a run of ``lossexp train``)
WARM_MODULES = ("tensorflow", "keras", "mlflow", "mlflow.tracking", "hydra", "optuna", "matplotlib.pyplot",
                "lossexp.cli", "lossexp.hydra_app", "lossexp.train", "lossexp.api", "lossexp.sweeps",
                "lossexp.training.trainer", "lossexp.tracking.run", "lossexp.evaluate",
                "mlflow.store.tracking.sqlalchemy_store", "mlflow.pyfunc", "mlflow.keras", "git", "sklearn.datasets",
                "matplotlib.backends.backend_agg", "tensorflow.saved_model", "hydra._internal.core_plugins",
                "lossexp.losses", "lossexp.models", "lossexp.data", "lossexp.balancing", "lossexp.precheck",
                "lossexp.training.supervised", "lossexp.training.checkpoint", "lossexp.tracking.logged_model",
                "lossexp.tracking.plots", "lossexp.tracking.gradient_plots", "lossexp.tracking.datasets",
                "lossexp.sweeps.optuna_sweep")


#: what the light warm process imports: the modules every command imports before it reads its arguments,
#: and nothing of TensorFlow, Keras or MLflow — its children answer as a new interpreter would for a
#: command that must be refused before those load (0.3–0.5 s of CPU saved per command)
LIGHT_MODULES = ("lossexp.cli", "lossexp.precheck")
#: what the light warm process must not have imported
HEAVY_MODULES = ("tensorflow", "keras", "mlflow")


def _warm_up_light() -> None:
    import importlib

    for name in LIGHT_MODULES:
        importlib.import_module(name)
    heavy = [name for name in HEAVY_MODULES if name in sys.modules]
    if heavy:
        raise RuntimeError(f"the light warm process imported {', '.join(heavy)}: its children would not show that "
                           "a command never imports them")


def _warm_up() -> None:
    from lossexp import import_hooks, quiet

    quiet.configure()
    import_hooks.import_keras_without_sklearn()
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)
    from tensorflow.python.eager import context

    if context.context()._context_handle is not None:  # a child would inherit a runtime it cannot use
        raise RuntimeError("TensorFlow's runtime was initialised while warming up: forking is not safe")


def _watch_imports(path: str) -> None:
    """As the command ends (its ``atexit`` handlers: :mod:`lossexp.fast_exit` runs them), write which of
    :data:`HEAVY_MODULES` it imported to ``path`` (the light warm process's children: what shows that a
    command never imports TensorFlow)."""
    atexit.register(lambda: Path(path).write_text("\n".join(name for name in HEAVY_MODULES if name in sys.modules)))


def _child(request: Dict) -> None:
    """In the forked child: become ``lossexp ARGS`` in the request's directory and environment."""
    if request.get("watch"):
        _watch_imports(request["watch"])
    os.setsid()  # its own process group: a timeout kills its sweep workers too
    # Ctrl-C as in a terminal: KeyboardInterrupt (the warm process of a pytest-xdist worker inherits SIGINT
    # ignored, and Python then installs no handler of its own)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    sys.argv = ["lossexp", *request["args"]]
    sys.path[0] = request["cwd"]  # as ``python -m lossexp.cli`` started there has it
    from lossexp.cli import run
    from lossexp.fast_exit import exit_now

    try:
        run()  # ends the process (lossexp.fast_exit)
    except SystemExit as exit_:  # what the interpreter makes of it, then its ending
        code = exit_.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
        exit_now(0 if code is None else code if isinstance(code, int) else 1)
    except BaseException:  # noqa: BLE001 - the interpreter prints any other escape and exits 1
        traceback.print_exc()
        exit_now(1)


def serve(light: bool) -> None:
    """The warm process (``light``: :data:`LIGHT_MODULES` only): read requests, fork a child per request,
    report its pid and exit status."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing the imports print reaches the reply channel
    _warm_up_light() if light else _warm_up()
    replies.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pids = []
        for one in request.get("together", [request]):
            pid = os.fork()
            if pid == 0:
                replies.close()
                try:
                    _child(one)
                finally:
                    os._exit(70)  # not reached: the child ends in lossexp.fast_exit
            pids.append(pid)
            replies.write(json.dumps({"pid": pid}) + "\n")
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")


class WarmCli:
    """The pytest side: starts the warm process and runs commands in it."""

    def __init__(self, env: Dict[str, str], light: bool = False) -> None:
        self.light = light
        self._process = subprocess.Popen([sys.executable, __file__, *(["--light"] if light else [])],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                         cwd=Path(__file__).parent)
        self._replies = b""  # read from the pipe's descriptor, not a buffered file: select sees all that is unread
        if self._expect("ready", timeout=120) is None:
            raise RuntimeError("the warm lossexp process was not ready within 120 s")

    def _expect(self, key: str, timeout: float) -> Optional[int]:
        """The value of ``key`` in the next reply line; None if none came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._replies:
            remaining = max(0.0, deadline - time.monotonic())  # 0: what has arrived already
            if not select.select([self._process.stdout], [], [], remaining)[0]:
                return None
            chunk = os.read(self._process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the warm lossexp process ended (exit status {self._process.wait()})")
            self._replies += chunk
        line, self._replies = self._replies.split(b"\n", 1)
        return json.loads(line)[key]

    def run(self, args: Sequence[str], cwd: Path, env: Dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        """``lossexp ARGS`` in ``cwd`` with ``env``, its output captured, as ``subprocess.run`` returns it."""
        [result] = self.run_together([args], cwd, env, timeout)
        return result

    def run_together(self, commands: Sequence[Sequence[str]], cwd: Path, env: Dict[str, str],
                     timeout: float) -> List[subprocess.CompletedProcess]:
        """``lossexp ARGS`` for each ARGS of ``commands``, all started at once (one child each) in ``cwd``
        with ``env``; their results in the same order once all have ended (within ``timeout`` s)."""
        capture = Path(tempfile.mkdtemp(prefix="warm-cli-"))
        requests = [{"args": list(args), "cwd": str(cwd), "env": env, "stdout": str(capture / f"{i}.stdout"),
                     "stderr": str(capture / f"{i}.stderr"), "watch": str(capture / f"{i}.imports") if self.light
                     else None} for i, args in enumerate(commands)]
        self._process.stdin.write(json.dumps({"together": requests}).encode() + b"\n")
        self._process.stdin.flush()
        pids = [self._expect("pid", timeout=30) for _ in requests]
        if None in pids:
            raise RuntimeError("the warm lossexp process forked no child within 30 s")
        started = time.monotonic()
        codes = []
        for _ in requests:
            code = self._expect("returncode", timeout=max(0.0, started + timeout - time.monotonic()))
            if code is None:
                for pid in pids[len(codes):]:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                for _ in pids[len(codes):]:
                    self._expect("returncode", timeout=30)
                raise subprocess.TimeoutExpired(["lossexp", *requests[len(codes)]["args"]], time.monotonic() - started)
            codes.append(code)
        results = [subprocess.CompletedProcess(["lossexp", *request["args"]], code, Path(request["stdout"]).read_text(),
                                               Path(request["stderr"]).read_text())
                   for request, code in zip(requests, codes)]
        for result, request in zip(results, requests):  # of the light process: which heavy modules it imported
            watched = Path(request["watch"]) if request["watch"] else None
            result.heavy_imports = sorted(set(watched.read_text().split())) if watched and watched.exists() else []
        shutil.rmtree(capture)
        return results

    def start(self, args: Sequence[str], cwd: Path, env: Dict[str, str]) -> "Started":
        """``lossexp ARGS`` in ``cwd`` with ``env`` in the background, its output captured: the calls of
        ``subprocess.Popen`` a test makes on it. No other command runs here until it has ended."""
        capture = Path(tempfile.mkdtemp(prefix="warm-cli-"))
        request = {"args": list(args), "cwd": str(cwd), "env": env, "stdout": str(capture / "stdout"),
                   "stderr": str(capture / "stderr")}
        self._process.stdin.write(json.dumps(request).encode() + b"\n")
        self._process.stdin.flush()
        pid = self._expect("pid", timeout=30)
        if pid is None:
            raise RuntimeError("the warm lossexp process forked no child within 30 s")
        return Started(self, ["lossexp", *args], pid, capture)

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=30)


class Started:
    """A command :meth:`WarmCli.start` runs in the background, with ``subprocess.Popen``'s ``pid``,
    ``returncode``, ``poll``, ``wait``, ``send_signal``, ``kill`` and ``communicate`` (its stdout and
    stderr as text, read once it has ended)."""

    def __init__(self, cli: WarmCli, args: List[str], pid: int, capture: Path) -> None:
        self._cli, self.args, self.pid, self._capture = cli, args, pid, capture
        self.returncode: Optional[int] = None
        self._output: Optional[Tuple[str, str]] = None

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            self.returncode = self._cli._expect("returncode", timeout=0)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is None:
            self.returncode = self._cli._expect("returncode", timeout=1e9 if timeout is None else timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL to the command and its process group; then waits for it (its exit status read)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.wait(30)

    def communicate(self, timeout: Optional[float] = None) -> Tuple[str, str]:
        self.wait(timeout)
        if self._output is None:
            self._output = ((self._capture / "stdout").read_text(), (self._capture / "stderr").read_text())
            shutil.rmtree(self._capture)
        return self._output


_shared: Dict[bool, WarmCli] = {}


def shared(env: Dict[str, str], light: bool = False) -> WarmCli:
    """This process's warm ``lossexp`` process (``light``: the light one), started (with ``env``) on first
    use and ended at exit."""
    if light not in _shared:
        _shared[light] = WarmCli(env, light)
        atexit.register(_shared[light].close)
    return _shared[light]


if __name__ == "__main__":
    serve(light="--light" in sys.argv[1:])
