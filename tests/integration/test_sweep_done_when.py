"""The issue's "done when": ``lossexp train -m loss=hist_avg+activity,activity,coef trainer.epochs=1
hydra/launcher=joblib`` leaves one parent and three FINISHED children in one store; ``lossexp
runs`` and ``lossexp compare`` show and plot them; the real MLflow UI (``lossexp ui``) shows them in
headless Chromium. The sweep runs once for the module (the default CNN on fewer digits)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import require
from integration_helpers import (NO_CHROMIUM, has_chromium, headless_chromium, lossexp, start_ui, stop_group,
                                 sweep_runs, wait_http)

# one sweep for the module under -n
pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.xdist_group("done_when")]

SWEEP = ["train", "-m", "loss=hist_avg+activity,activity,coef", "trainer.epochs=1", "hydra/launcher=joblib",
         "data.n_samples=300", "trainer.verbose=0", "tracking.plots=false", "tracking.log_model=false"]
CHILDREN = {"loss=hist_avg+activity", "loss=activity", "loss=coef"}
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """(directory, store uri, completed process) of the done-when sweep."""
    cwd = tmp_path_factory.mktemp("done_when")
    result = lossexp(cwd, *SWEEP)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}", result


def test_one_parent_and_three_finished_children_in_one_store(sweep):
    cwd, uri, _ = sweep
    assert [p.relative_to(cwd) for p in cwd.rglob("*.db")] == [Path("outputs/mlflow.db")]
    [parent], children = sweep_runs(uri)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name.endswith("· loss=hist_avg+activity,activity,coef")
    assert parent.data.tags["sweep.keys"] == "loss" and parent.data.tags["sweep.launcher"] == "JoblibLauncher"
    assert {c.info.run_name for c in children} == CHILDREN
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["sweep.tf_threads"] == str(max(len(os.sched_getaffinity(0)) // 2, 1))
        assert child.data.params["model.name"] == "cnn"
    objectives = {c.info.run_id: c.data.metrics["objective"] for c in children}
    best = min(objectives, key=objectives.get)
    assert parent.data.tags["sweep.best_run_id"] == best
    assert parent.data.metrics["sweep/best_objective"] == objectives[best]
    assert parent.data.metrics["sweep/finished"] == 3 and parent.data.metrics["sweep/failed"] == 0


def test_runs_and_compare_show_and_plot_the_sweep(sweep):
    cwd, uri, _ = sweep
    from mlflow.tracking import MlflowClient

    [parent], _ = sweep_runs(uri)
    listed = lossexp(cwd, "runs", "--sweep", parent.info.run_id, COLUMNS="200")
    assert listed.returncode == 0, listed.stderr
    for name in CHILDREN:
        assert name in listed.stdout
    assert listed.stdout.count("FINISHED") == 4 and "val_acc=" in listed.stdout
    everything = lossexp(cwd, "runs", "--experiment", "lossexp", COLUMNS="200")
    assert everything.returncode == 0 and everything.stdout.count("FINISHED") == 4
    compared = lossexp(cwd, "compare", parent.info.run_id, COLUMNS="200")
    assert compared.returncode == 0, compared.stderr
    png = cwd / "outputs" / "compare" / f"{parent.info.run_id}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    history = png.with_name(f"{png.stem}-history.png")
    assert history.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    logged = sorted(a.path for a in MlflowClient(uri).list_artifacts(parent.info.run_id, "compare"))
    assert logged == [f"compare/{history.name}", f"compare/{png.name}"]
    bad = lossexp(cwd, "compare", "0123456789abcdef")
    assert bad.returncode == 2 and bad.stderr.startswith("lossexp: error: Unknown run '0123456789abcdef'")


def test_mlflow_ui_shows_the_sweep_in_chromium(sweep, tmp_path):
    require(has_chromium(), NO_CHROMIUM)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    cwd, uri, _ = sweep
    [parent], children = sweep_runs(uri)
    child = next(c for c in children if c.info.run_name == "loss=coef")
    experiment = parent.info.experiment_id
    ui, base = start_ui(cwd)
    driver = None
    try:
        assert ui.stdout.readline().strip().endswith(f"at {base} (Ctrl-C stops it)")
        wait_http(f"{base}/health", ui, timeout=240)
        driver = headless_chromium(tmp_path)
        wait = WebDriverWait(driver, 60)
        shot = ARTIFACTS / "mlflow_ui"
        shot.mkdir(parents=True, exist_ok=True)

        driver.get(f"{base}/#/experiments/{experiment}/runs?workflowType=machine_learning")
        wait.until(ec.presence_of_element_located((By.XPATH, f"//*[text()={_xpath_literal(parent.info.run_name)}]")))
        expand = f"//div[@row-id='{parent.info.run_id}']//button[contains(@data-component-id,'runnamecellrenderer')]"
        wait.until(ec.element_to_be_clickable((By.XPATH, expand))).click()  # children are folded under the parent
        for name in CHILDREN:
            wait.until(ec.presence_of_element_located((By.XPATH, f"//*[text()='{name}']")))
        driver.save_screenshot(str(shot / "runs.png"))

        driver.get(f"{base}/#/experiments/{experiment}/runs/{child.info.run_id}?workflowType=machine_learning")
        tab = "//*[@role='tab'][normalize-space(.)='Model metrics']"
        wait.until(ec.element_to_be_clickable((By.XPATH, tab))).click()
        search = wait.until(ec.element_to_be_clickable((By.XPATH, "//input[@placeholder='Search metric charts']")))
        for metric in ("weight/coef/coef", "loss/coef"):  # charts render when on screen: filter down to each one
            search.send_keys(Keys.CONTROL, "a")
            search.send_keys(metric)
            wait.until(ec.presence_of_element_located(
                (By.CSS_SELECTOR, f'[data-testid="experiment-view-compare-runs-card"] h4[title="{metric}"]')))
        driver.save_screenshot(str(shot / "child_metrics.png"))
    except Exception:
        if driver is not None:
            (ARTIFACTS / "mlflow_ui").mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "mlflow_ui" / "failure.png"))
            (ARTIFACTS / "mlflow_ui" / "failure.html").write_text(driver.page_source)
        raise
    finally:
        if driver is not None:
            driver.quit()
        stop_group(ui)
    assert (shot / "child_metrics.png").stat().st_size > 10_000
    shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


def _xpath_literal(text: str) -> str:
    return f"'{text}'" if "'" not in text else 'concat("' + text.replace('"', '", \'"\', "') + '")'
