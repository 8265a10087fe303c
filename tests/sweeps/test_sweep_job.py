"""Per-job preparation: TensorFlow threads share the cores between parallel jobs."""
import pytest

from lossexp.sweeps.job import child_identity, threads_per_job


@pytest.mark.parametrize("n_jobs, cores, threads", [(2, 2, 1), (2, 8, 4), (3, 8, 2), (16, 2, 1), (-1, 4, 1),
                                                   (-2, 8, 1), (None, 8, None), (1, 8, None)])
def test_threads_per_job_is_cores_over_parallel_jobs(n_jobs, cores, threads):
    assert threads_per_job(n_jobs, cores) == threads


def test_a_run_outside_a_sweep_has_no_parent():
    assert child_identity(None, []) == (None, {})
    assert child_identity("abc", []) == (None, {"mlflow.parentRunId": "abc"})
