"""How long this process has existed: lossexp's start-up cost as a researcher feels it."""
from __future__ import annotations

import os
from typing import Optional


def seconds_since_process_start() -> Optional[float]:
    """Seconds since the OS started this process, to 10 ms (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as uptime:
            since_boot = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return since_boot - start_ticks / os.sysconf("SC_CLK_TCK")
