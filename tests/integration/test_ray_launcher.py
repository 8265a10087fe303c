"""``hydra/launcher=ray`` against a local Ray head started by the test: the children land under one
parent. Ray listens on every interface whatever address it is given, and ``ray stop`` kills by
name machine-wide, so Ray runs only inside its own network and PID namespaces with loopback
alone (``unshare``); everything in them ends with the namespace's first process."""
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import require
from integration_helpers import QUICK, lossexp_env, sweep_runs

pytestmark = [pytest.mark.slow, pytest.mark.integration]

UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]


def _namespaces_unavailable() -> str:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2) to isolate Ray in its own network/PID namespaces"
    probe = subprocess.run([*UNSHARE, "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create network/PID namespaces here (needs root): {probe.stderr.strip()[:200]}"
    return ""


def test_ray_children_land_under_one_parent(tmp_path: Path, store_uri: str):
    unavailable = _namespaces_unavailable()
    require(not unavailable, unavailable)
    ray = Path(sys.executable).parent / "ray"
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    sweep = [sys.executable, "-m", "lossexp.cli", "train", "-m", *QUICK, "loss=hist_avg,coef",
             "hydra/launcher=ray", "hydra.launcher.ray.init.address=127.0.0.1:6380",
             "+hydra.launcher.ray.init.object_store_memory=null"]
    script = "\n".join([
        "set -e",
        "ip link set lo up",
        f"{ray} start --head --port=6380 --node-ip-address=127.0.0.1 --include-dashboard=false --num-cpus=2 "
        f"--temp-dir={ray_tmp} --disable-usage-stats > ray_start.log 2>&1",
        "set +e",
        " ".join(shlex.quote(part) for part in sweep),
        "status=$?",
        f"{ray} stop --force > /dev/null 2>&1",  # inside the PID namespace: only this test's Ray
        "exit $status",
    ])
    try:
        result = subprocess.run([*UNSHARE, "bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                                env=lossexp_env(RAY_USAGE_STATS_ENABLED="0"), timeout=600)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    [parent], children = sweep_runs(store_uri)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.launcher"] == "RayLauncher"
    assert sorted(c.info.run_name for c in children) == ["loss=coef", "loss=hist_avg"]
    assert all(c.info.status == "FINISHED" and c.data.tags["mlflow.parentRunId"] == parent.info.run_id
               for c in children)
