"""client.cas: a node's content-addressed store from Python (docs/cas.md), over the Unix socket
(zero copy: the object API's cas/ keys), HTTP (/v1/cas) and gRPC, and the CLI over the socket."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

import packice
from conftest import BIN_DIR, record_exec, run_python

EMPTY_BLAKE3 = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262/0"


@pytest.fixture
def cas_node(start_node, tmp_path):
    """A memory node with a CAS in tmp_path/cas, also serving HTTP and gRPC."""
    return start_node(
        "--store", "memory", "--capacity", "256M", "--cas-dir", str(tmp_path / "cas"),
        "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0",
    )


def _client(node, transport: str) -> packice.Client:
    url = {"uds": node.url, "http": node.http_url, "grpc": node.grpc_url}[transport]
    return packice.connect(url)


@pytest.mark.parametrize("transport", ["uds", "http", "grpc"])
def test_round_trip_bytes_and_file(cas_node, tmp_path, transport):
    cas = _client(cas_node, transport).cas
    data = os.urandom(300_000)
    digest = cas.put(data)
    assert digest.startswith("blake3:") and digest.endswith(f"/{len(data)}")
    view = cas.get(digest)
    assert isinstance(view, memoryview) and view.readonly and view.tobytes() == data
    assert cas.stat(digest) == len(data)
    assert cas.put(data) == digest  # idempotent
    assert cas.put(bytearray(data)) == digest and cas.put(memoryview(data)) == digest

    f = tmp_path / "blob.bin"
    f.write_bytes(os.urandom(3 << 20) + b"tail")
    by_path = cas.put(f)  # os.PathLike
    assert cas.put(str(f)) == by_path  # str: a path too
    assert cas.get(by_path).tobytes() == f.read_bytes()

    sha = cas.put(b"hello", algorithm="sha256")
    assert sha == f"sha256:{hashlib.sha256(b'hello').hexdigest()}/5"
    assert bytes(cas.get(sha)) == b"hello"
    with pytest.raises(packice.InvalidArgument):
        cas.put(b"x", algorithm="md5")


@pytest.mark.parametrize("transport", ["uds", "http"])
def test_ranges_and_their_edges(cas_node, transport):
    cas = _client(cas_node, transport).cas
    data = bytes(range(256)) * 400  # 102400 bytes: mapped, not inline, over uds
    d = cas.put(data)
    n = len(data)
    assert cas.get(d, range=(0, 0)).tobytes() == b""
    assert cas.get(d, range=(0, 1)).tobytes() == data[:1]
    assert cas.get(d, range=(n - 1, 1)).tobytes() == data[-1:]
    assert cas.get(d, range=(n - 1, None)).tobytes() == data[-1:]
    assert cas.get(d, range=(1000, None)).tobytes() == data[1000:]
    assert cas.get(d, range=(n, None)).tobytes() == b""  # the empty range at the end
    assert cas.get(d, range=slice(10, 20)).tobytes() == data[10:20]
    assert cas.get(d, range=slice(None, 5)).tobytes() == data[:5]
    assert cas.get(d, range=slice(n - 3, None)).tobytes() == data[-3:]
    for bad in [(n + 1, None), (n - 1, 2), (0, n + 1), slice(0, n + 1)]:
        with pytest.raises(packice.OutOfRange):
            cas.get(d, range=bad)
    for bad in [(-1, None), (0, -1), slice(5, 2), slice(0, 10, 2), "0-10", (1.5, None)]:
        with pytest.raises(packice.InvalidArgument):
            cas.get(d, range=bad)

    # The empty blob always exists, even if never stored.
    assert cas.stat(EMPTY_BLAKE3) == 0
    assert cas.get(EMPTY_BLAKE3).tobytes() == b""
    assert cas.get(EMPTY_BLAKE3, range=(0, None)).tobytes() == b""
    assert cas.put(b"") == EMPTY_BLAKE3
    with pytest.raises(packice.OutOfRange):
        cas.get(EMPTY_BLAKE3, range=(1, None))


@pytest.mark.parametrize("transport", ["uds", "http", "grpc"])
def test_missing_stat_and_errors(cas_node, transport):
    cas = _client(cas_node, transport).cas
    have = cas.put(b"present")
    gone1 = f"blake3:{'1' * 64}/7"
    gone2 = f"sha256:{'2' * 64}/9"
    assert cas.missing([gone1, have, gone2]) == [gone1, gone2]
    assert cas.missing([]) == []
    assert cas.missing(iter([have])) == []
    # REAPI's bare form is SHA-256; answers are canonical.
    assert cas.missing([f"{'3' * 64}/1"]) == [f"sha256:{'3' * 64}/1"]
    with pytest.raises(packice.NotFound):
        cas.stat(gone1)
    with pytest.raises(packice.NotFound):
        cas.get(gone1)
    assert have in cas and gone1 not in cas

    for bad in ["not-a-digest", "blake3:abc/1", f"blake3:{'A' * 64}/1", f"blake3:{'a' * 64}/-1"]:
        with pytest.raises(packice.InvalidArgument) as e:
            cas.get(bad)
        assert "digest" in str(e.value).lower() or "hex" in str(e.value).lower(), str(e.value)
        with pytest.raises(packice.InvalidArgument):
            cas.missing([have, bad])

    # Content that is not its digest is refused and stores nothing.
    real = b"the real bytes"
    d = hashlib.sha256(real).hexdigest()
    with pytest.raises(packice.DigestMismatch):
        cas.store(f"sha256:{d}/{len(real)}", b"something else")
    with pytest.raises(packice.DigestMismatch):
        cas.store(f"sha256:{d}/{len(real)}", b"other bytes!!!")  # same size, other content
    with pytest.raises(packice.NotFound):
        cas.stat(f"sha256:{d}/{len(real)}")
    cas.store(f"sha256:{d}/{len(real)}", real)
    assert cas.get(f"sha256:{d}/{len(real)}").tobytes() == real


def test_views_keep_the_blob_and_cas_keys_are_objects(cas_node):
    client = packice.connect(cas_node.url)
    data = os.urandom(1 << 20)
    d = client.cas.put(data)
    view = client.cas.get(d)
    part = view[100:200]
    del view
    assert part.tobytes() == data[100:200]  # the slice keeps the lease
    # The blob is an object of the object API under cas/, read-only there.
    with client.get("cas/" + d) as obj:
        assert obj.size == len(data) and obj.buffer.tobytes() == data
    assert "cas/" + d in [o.key for o in client.list("cas/")]
    with pytest.raises(packice.PermissionDenied):
        client.delete("cas/" + d)
    with pytest.raises(packice.InvalidArgument):
        client.get("cas/nope")


# Process A stores a blob; process B maps it: the same file pages, read-only, no copy.
PUTTER = r"""
import sys, packice
c = packice.connect(sys.argv[1])
print(c.cas.put(bytes(range(256)) * (32 << 10)))  # 8 MiB
"""

GETTER = r"""
import json, sys
import numpy as np
import packice

def mapping_of(addr):
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= addr < hi:
                return {"perms": fields[1], "path": " ".join(fields[5:])}
    return None

c = packice.connect(sys.argv[1])
view = c.cas.get(sys.argv[2])
arr = np.frombuffer(view, dtype=np.uint8)
out = {"readonly": view.readonly and not arr.flags.writeable, "size": len(view),
       "mapping": mapping_of(arr.ctypes.data),
       "correct": bool((arr == np.tile(np.arange(256, dtype=np.uint8), 32 << 10)).all())}
try:
    view[0] = 1
    out["write"] = "allowed"
except TypeError as e:
    out["write"] = str(e)
head = c.cas.get(sys.argv[2], range=(1 << 20, 4096))
out["range_mapping"] = mapping_of(np.frombuffer(head, np.uint8).ctypes.data)
out["range_first"] = head[0]
print(json.dumps(out))
"""


def test_two_processes_share_a_blob_zero_copy(cas_node, tmp_path):
    digest = run_python(PUTTER, cas_node.url).stdout.strip()
    assert digest.endswith(f"/{8 << 20}")
    b = json.loads(run_python(GETTER, cas_node.url, digest).stdout)
    assert b["correct"] and b["readonly"] and b["size"] == 8 << 20
    assert "read-only" in b["write"] or "readonly" in b["write"]
    # The view is the node's blob file under its CAS directory, mapped shared and read-only.
    cas_dir = str(tmp_path / "cas")
    for m in (b["mapping"], b["range_mapping"]):
        assert m["perms"] == "r--s", m
        assert m["path"].startswith(cas_dir + "/blake3/"), m
    assert b["range_first"] == 0  # byte 1 MiB of the pattern


def _cli(node, *args: str, input: bytes = b"") -> subprocess.CompletedProcess:
    exe = str(BIN_DIR / "packice")
    record_exec(exe)
    return subprocess.run(
        [exe, "--url", node.url, "cas", *args], capture_output=True, input=input, timeout=60
    )


def test_cli_over_the_unix_socket(cas_node, tmp_path):
    f = tmp_path / "in.bin"
    f.write_bytes(os.urandom(2 << 20))
    put = _cli(cas_node, "put", str(f))
    assert put.returncode == 0, put.stderr
    digest = put.stdout.decode().strip()
    cas = packice.connect(cas_node.url).cas
    assert cas.put(f) == digest  # the same digest from Python
    out = tmp_path / "out.bin"
    assert _cli(cas_node, "get", digest, "-o", str(out)).returncode == 0
    assert out.read_bytes() == f.read_bytes()
    got = _cli(cas_node, "get", digest, "--range", "10-19")
    assert got.returncode == 0 and got.stdout == f.read_bytes()[10:20]
    stdin = _cli(cas_node, "put", "--sha256", "-", input=b"from stdin")
    assert stdin.stdout.decode().strip() == f"sha256:{hashlib.sha256(b'from stdin').hexdigest()}/10"
    assert cas.get(stdin.stdout.decode().strip()).tobytes() == b"from stdin"
    stat = _cli(cas_node, "stat", digest)
    assert stat.returncode == 0 and f"size: {2 << 20}" in stat.stdout.decode()
    gone = f"blake3:{'0' * 64}/1"
    missing = _cli(cas_node, "missing", digest, gone)
    assert missing.returncode == 0 and missing.stdout.decode() == gone + "\n"
    bad = _cli(cas_node, "get", digest, "--range", f"{(2 << 20) + 1}-")
    assert bad.returncode == 1 and b"out_of_range" in bad.stderr
    absent = _cli(cas_node, "stat", gone)
    assert absent.returncode == 1 and b"not_found" in absent.stderr


@pytest.mark.parametrize("transport", ["uds", "http"])
def test_a_node_without_a_cas(start_node, transport):
    node = start_node("--store", "memory", "--capacity", "64M", "--http", "127.0.0.1:0")
    cas = _client(node, transport).cas
    with pytest.raises(packice.NotFound):
        cas.put(b"x")
    with pytest.raises(packice.NotFound):
        cas.get(EMPTY_BLAKE3)
