"""Fixtures of the Python binding's tests: real packiced processes of this build, owned by pid.

CTest runs these with PYTHONPATH=<build>/python and PACKICE_BIN_DIR=<build> (CMakeLists.txt,
the python_tests test); by hand:

    PYTHONPATH=build/python PACKICE_BIN_DIR=build /usr/bin/python3 -m pytest python/tests
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

SOURCE_DIR = Path(os.environ.get("PACKICE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN_DIR = Path(os.environ.get("PACKICE_BIN_DIR", SOURCE_DIR / "build")).resolve()
PACKICED = BIN_DIR / "packiced"
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when this test process dies, so a crashed test
    leaves no packiced behind (as tests/testing.cc does for the C++ tests)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def record_exec(path: str) -> None:
    """Appends a program a test starts to $PACKICE_EXEC_LOG (read by scripts/check-deps.py)."""
    log = os.environ.get("PACKICE_EXEC_LOG")
    if log:
        with open(log, "a") as f:
            f.write(os.path.realpath(path) + "\n")


class Node:
    """One packiced process, started with its own socket (and data directory) and stopped by
    pid. Ready when it logs event=ready (at the default log level, info)."""

    def __init__(self, args: List[str], data_dir: Optional[str] = None) -> None:
        # Socket paths are limited to 108 bytes: a short directory of our own, not tmp_path.
        self.dir = tempfile.mkdtemp(prefix="pkpy-")
        self.socket = os.path.join(self.dir, "node.sock")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "node.log")
        self.url = "uds://" + self.socket
        self.http_url: Optional[str] = None
        self.grpc_url: Optional[str] = None
        argv = [str(PACKICED), "--socket", self.socket, "--data-dir", self.data_dir] + args
        self._log = open(self.log_path, "wb")
        record_exec(argv[0])
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"packiced exited with {self.proc.returncode}:\n{self.log()}")
            ready = re.search(r"event=ready .*", self.log())
            if ready and os.path.exists(self.socket):
                m = re.search(r"http_url=(https?://\S+)", ready.group(0))
                if m:
                    self.http_url = m.group(1)
                m = re.search(r"grpc_url=(grpcs?://\S+)", ready.group(0))
                if m:
                    self.grpc_url = m.group(1)
                return
            time.sleep(0.02)
        log = self.log()
        self.stop()
        raise RuntimeError("packiced did not become ready:\n" + log)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # in case a test left it stopped
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def start_node() -> Iterator:
    """A function that starts a packiced with extra flags; every node is stopped at the end."""
    nodes: List[Node] = []

    def start(*args: str, data_dir: Optional[str] = None) -> Node:
        if not PACKICED.exists():
            pytest.fail(f"no packiced at {PACKICED} (set PACKICE_BIN_DIR to the build directory)")
        node = Node(list(args), data_dir)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture
def node(start_node) -> Node:
    """A memory node with 1 GiB of capacity."""
    return start_node("--store", "memory", "--capacity", "1G")


def run_python(code: str, *args: str, timeout: float = 60, input: Optional[str] = None):
    """Runs `code` in a new Python process (this interpreter, this PYTHONPATH); returns the
    CompletedProcess, stdout and stderr as text. Fails the test with its output if it fails."""
    record_exec(sys.executable)
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"child exited with {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n"
            f"{proc.stderr}"
        )
    return proc
