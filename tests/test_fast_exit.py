"""The console command's exit: the code, the atexit handlers, the threads and every open file's
buffered writes survive skipping the interpreter's teardown."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import atexit, sys, threading, time
    from lossexp.fast_exit import exit_now

    unclosed, handler, worker = sys.argv[1:4]
    left_open = open(unclosed, "w")  # never closed: the teardown would have flushed it
    left_open.write("buffered, never closed")

    def at_exit():
        with open(handler, "w") as f:
            f.write("atexit ran")

    def slow_worker():
        time.sleep(0.5)
        with open(worker, "w") as f:
            f.write("thread finished")

    atexit.register(at_exit)
    threading.Thread(target=slow_worker).start()  # not a daemon: joined before the exit
    print("printed without newline", end="")
    exit_now(3)
""")


def test_exit_now_keeps_the_code_atexit_threads_and_open_files(tmp_path):
    unclosed, handler, worker = tmp_path / "unclosed.txt", tmp_path / "atexit.txt", tmp_path / "worker.txt"
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(unclosed), str(handler), str(worker)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "printed without newline"
    assert unclosed.read_text() == "buffered, never closed"
    assert handler.read_text() == "atexit ran"
    assert worker.read_text() == "thread finished"


def test_the_console_command_ends_through_exit_now(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lossexp.cli", "no-such-command"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("lossexp: error: Unknown command 'no-such-command'")
