"""``lossexp ui`` serves the MLflow UI on 127.0.0.1 only: checked on the sockets its processes
listen on (``/proc/net/tcp*``), not on the URL it prints."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Set, Tuple

import pytest

from conftest import lossexp_env

pytestmark = pytest.mark.slow  # an MLflow server starts


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_socket_inodes(pgid: int) -> Set[str]:
    """Inodes of the sockets open in every process of the process group ``pgid``."""
    inodes = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:["):-1])
        except (OSError, ValueError, IndexError):  # a process that ended meanwhile
            continue
    return inodes


def listening(inodes: Set[str]) -> Set[Tuple[str, int]]:
    """(address, port) of the TCP sockets among ``inodes`` in the LISTEN state, IPv4 and IPv6."""
    import ipaddress

    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: TCP_LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # the kernel prints the address as 32-bit words in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((str(ipaddress.ip_address(raw)), int(port, 16)))
    return found


@pytest.mark.integration  # a server (MLflow's UI), 15 s
def test_ui_listens_on_loopback_only(tmp_path):
    port = free_port()
    log = tmp_path / "ui.log"  # a file, not a pipe: nothing can block the server on a full buffer
    with open(log, "w") as output:
        ui = subprocess.Popen([sys.executable, "-m", "lossexp.cli", "ui", "--port", str(port)], cwd=tmp_path,
                              env=lossexp_env(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert ui.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the UI did not answer /health within 120 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        sockets = listening(group_socket_inodes(ui.pid))
        assert ("127.0.0.1", port) in sockets, sockets
        assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, 15)
            try:
                ui.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(ui.pid, 9)
                ui.wait()
    printed = log.read_text()  # no job runner (its consumers printed a traceback each as they stopped), no INFO
    assert "huey" not in printed and "INFO:" not in printed and "DeprecationWarning" not in printed, printed[-3000:]
