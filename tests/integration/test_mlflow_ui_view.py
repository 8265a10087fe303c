"""The MLflow UI as a lossexp user meets it, in headless Chromium: ``lossexp ui`` prints an address
that lands on the experiment's runs in the model-training view (not MLflow 3's GenAI overview), and
the run's chart view — the address ``lossexp train`` prints — opens on the loss breakdown, with
drift in three sections after it and the gradient diagnostics grouped under ``weight_grad``. A screenshot of the chart view is kept in
``test-artifacts/mlflow_ui/run_charts.png``."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import require
from integration_helpers import (NO_CHROMIUM, has_chromium, headless_chromium, lossexp, start_ui, stop_group,
                                 wait_http)

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(autouse=True)
def chromium() -> None:
    """Debian's Chromium, which make test-integration installs: missing, the test fails naming it."""
    require(has_chromium(), NO_CHROMIUM)

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "mlflow_ui"
TRAIN = ["train", "loss=hist_avg+activity+coef", "data.n_samples=300", "trainer.epochs=2", "tracking.plots=false"]
#: the chart sections in the order the UI shows them: the loss breakdown first, drift in three, the gradient
#: diagnostics in one section per part of the loss
SECTIONS = ["loss", "term", "val_loss", "val_term", "weight", "weight/coef", "weight_drift/from_avg",
            "weight_drift/from_init", "weight_drift/per_step", "weight_grad", "weight_grad/activity", "weight_grad/coef",
            "weight_grad/hist_avg", "weight_grad/task", "Model metrics"]
SECTION_HEADER = '[data-testid="experiment-view-compare-runs-section-header"]'


def test_ui_lands_on_the_runs_and_the_charts_start_with_the_loss_breakdown(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    trained = lossexp(tmp_path, *TRAIN)
    assert trained.returncode == 0, trained.stderr[-3000:]
    [view] = [line.split()[1] for line in trained.stdout.splitlines() if line.strip().startswith("view ")]
    run_name = "cnn·hist_avg+activity+coef"

    ui, base = start_ui(tmp_path)
    driver = None
    try:
        assert ui.stdout.readline().strip().endswith(f"at {base} (Ctrl-C stops it)")
        runs_line = ui.stdout.readline().strip()
        assert re.fullmatch(rf"lossexp: runs of 'lossexp': {re.escape(base)}/#/experiments/\d+/runs"
                            r"\?workflowType=machine_learning", runs_line), runs_line
        wait_http(f"{base}/health", ui, timeout=240)
        driver = headless_chromium(tmp_path)
        wait = WebDriverWait(driver, 90)
        SHOTS.mkdir(parents=True, exist_ok=True)

        driver.get(runs_line.split(": ", 2)[2])  # the landing view: the runs table, model training
        wait.until(ec.presence_of_element_located((By.XPATH, f"//*[text()='{run_name}']")))
        wait.until(ec.presence_of_element_located((By.XPATH, "//*[normalize-space(text())='Run Name']")))
        driver.save_screenshot(str(SHOTS / "runs_view.png"))

        driver.get(view.replace("http://127.0.0.1:5000", base))  # the run's chart view, as train printed it
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, SECTION_HEADER)) >= len(SECTIONS))
        headers = [h.text.strip() for h in driver.find_elements(By.CSS_SELECTOR, SECTION_HEADER)]
        sections = [re.sub(r"\s*\(\d+\)$", "", h.splitlines()[0]) for h in headers]
        assert sections == SECTIONS, headers
        wait.until(ec.presence_of_element_located(
            (By.CSS_SELECTOR, '[data-testid="experiment-view-compare-runs-card"] h4[title="loss/task"]')))
        for close in driver.find_elements(By.CSS_SELECTOR, '[data-component-id="mlflow.assistant.chat_panel.close"]'):
            close.click()  # the assistant panel would hide half the charts in the screenshot
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.main-svg")) >= 6)  # the first charts drawn
        driver.save_screenshot(str(SHOTS / "run_charts.png"))
    except Exception:
        if driver is not None:
            SHOTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(SHOTS / "view_failure.png"))
            (SHOTS / "view_failure.html").write_text(driver.page_source)
        raise
    finally:
        if driver is not None:
            driver.quit()
        stop_group(ui)
    assert (SHOTS / "run_charts.png").stat().st_size > 10_000
