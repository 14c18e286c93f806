"""The examples run as shipped."""

from __future__ import annotations

import subprocess
import sys

from conftest import PACKICED, SOURCE_DIR

EXAMPLES = SOURCE_DIR / "examples"


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    return proc


def test_walkthrough(node):
    proc = run(str(EXAMPLES / "walkthrough.py"), "--url", node.url)
    assert "b'Hello Packice'" in proc.stdout  # the seed's print(obj.buffer.tobytes())
    assert "[A pid=" in proc.stderr and "[B pid=" in proc.stderr
    assert "64 MiB mapped read-only" in proc.stderr
    assert "walkthrough ok" in proc.stderr


def test_walkthrough_against_a_node_that_is_not_there(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "walkthrough.py"), "--url", f"uds://{tmp_path}/x.sock"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "unavailable" in proc.stderr


def test_shared_fs_demo(tmp_path):
    proc = run(str(EXAMPLES / "shared_fs_demo.py"), "--dir", str(tmp_path / "shared"),
               "--packiced", str(PACKICED))
    assert proc.stdout.count("b'Hello Packice'") == 1
    assert "B read what A wrote" in proc.stderr
    assert "node 2 serves what node 1 stored" in proc.stderr
    assert "node 2 serves what process A stored" in proc.stderr
    assert "two nodes served one directory" in proc.stderr
