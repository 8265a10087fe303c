"""startup_seconds of a process's later runs counts from the run's start, not the process's."""
import time

from lossexp.tracking import clock


def test_a_later_run_counts_from_its_own_start(monkeypatch):
    monkeypatch.setattr(clock, "_runs_started", 0)
    monkeypatch.setattr(clock, "_run_start", None)
    clock.run_started()  # the process's first run: since the process started (pytest's imports: > 1 s)
    first = clock.startup_seconds()
    assert first is not None and abs(first - clock.seconds_since_process_start()) < 0.05
    clock.run_started()  # a sweep's second job in the same process
    time.sleep(0.05)
    later = clock.startup_seconds()
    assert 0.05 <= later < 0.5 < first  # it was the process's age again, as large as the first run's and more
