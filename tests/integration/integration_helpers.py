"""Helpers for the end-to-end sweep tests: run ``lossexp`` in a directory, read a store's sweeps
back, wait for and stop a server started in its own process group (``mlflow server``,
``lossexp ui``)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import List, Tuple

from conftest import lossexp_env

#: a tiny regression job: the sweep mechanics are under test, not the model
QUICK = ["model=mlp", "data=regression", "data.n_samples=100", "trainer.epochs=1", "trainer.verbose=0",
         "tracking.plots=false", "tracking.log_model=false"]


def lossexp(cwd: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """``lossexp ARGS`` as a user runs it from ``cwd``."""
    return subprocess.run([sys.executable, "-m", "lossexp.cli", *args], cwd=cwd, env=lossexp_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def sweep_runs(uri: str) -> Tuple[List, List]:
    """(parents, children) of every sweep in the store at ``uri`` (opened as lossexp opens it: a store
    being created by a running sweep is waited for, not migrated a second time at once)."""
    from lossexp.tracking import store

    client = store.open_client(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids) if ids else []
    parents = [r for r in runs if r.data.tags.get("lossexp.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ui(cwd: Path) -> Tuple[subprocess.Popen, str]:
    """``lossexp ui`` on a free loopback port, in its own process group (stop it with
    :func:`stop_group`); returns the process, its output readable line by line, and its base URL."""
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "lossexp.cli", "ui", "--port", str(port)], cwd=cwd,
                          env=lossexp_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    return ui, f"http://127.0.0.1:{port}"


def wait_http(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def stop_group(process: subprocess.Popen, first: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Signal the server's own process group (it was started with setsid) with ``first``, then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, first)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NO_CHROMIUM = ("needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); "
               "apt-get install -y chromium chromium-driver (make test-integration does)")


def has_chromium() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def headless_chromium(tmp_path: Path, width: int = 1600, height: int = 1000):
    """Debian's Chromium under Selenium, headless, downloading nothing, its state under ``tmp_path``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'chromium'}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"), "XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER), env=env))

