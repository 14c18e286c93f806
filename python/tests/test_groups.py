"""Cache groups from Python: packice.Group (in this process, a Python loader) and
client.group(name) (a real packiced's groups over gRPC and HTTP, with tests/origin.py as the
origin)."""

from __future__ import annotations

import gc
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import packice
from conftest import SOURCE_DIR, _die_with_parent, record_exec, run_python


class Loader:
    """A loader that counts its calls (per key), optionally slowly or failing."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.gate: threading.Event | None = None  # set: loads wait for it first
        self.calls: List[str] = []
        self.lock = threading.Lock()
        self.fail: dict = {}  # key -> exception to raise

    def __call__(self, key: str):
        with self.lock:
            self.calls.append(key)
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.delay:
            time.sleep(self.delay)
        if key in self.fail:
            raise self.fail[key]
        return b"value of " + key.encode()

    def count(self, key: str) -> int:
        with self.lock:
            return self.calls.count(key)


def wait_for_gets(g: packice.Group, n: int) -> None:
    """Until `n` gets have entered the group (they then wait for the one load, or hit)."""
    deadline = time.monotonic() + 30
    while g.stats()["gets"] < n and time.monotonic() < deadline:
        time.sleep(0.005)


# --- packice.Group: in this process ----------------------------------------------------------


def test_miss_loads_then_hits():
    loader = Loader()
    users = packice.Group("users", "1M", loader)
    assert users.name == "users"
    assert users.get("42") == b"value of 42"
    assert users.get("42") == b"value of 42"
    assert loader.count("42") == 1
    s = users.stats()
    assert (s["gets"], s["hits"], s["misses"], s["loads"]) == (2, 1, 1, 1)
    assert s["items"] == 1 and s["capacity_bytes"] == 1 << 20
    assert s["load_seconds_sum"] >= 0


def test_loader_may_return_str_and_bytes_like():
    answers = {"s": "héllo", "ba": bytearray(b"\x00\x01"), "mv": memoryview(b"view")}
    g = packice.Group("kinds", "1M", lambda k: answers[k])
    assert g.get("s") == "héllo".encode()
    assert g.get("ba") == b"\x00\x01"
    assert g.get("mv") == b"view"


def test_concurrent_misses_call_the_loader_once():
    loader = Loader(delay=0.1)
    loader.gate = threading.Event()
    g = packice.Group("slow", "1M", loader)
    n = 50
    start = threading.Barrier(n)
    results: List[object] = [None] * n

    def reader(i: int) -> None:
        start.wait()
        try:
            results[i] = g.get("hot")
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    wait_for_gets(g, n)  # every reader is in Group::Get, the GIL released, the load held back
    loader.gate.set()
    # While they wait, the GIL is free: this thread keeps running Python.
    spins = 0
    while any(t.is_alive() for t in threads) and time.monotonic() - t0 < 30:
        spins += 1
        time.sleep(0.001)
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "readers deadlocked"
    assert results == [b"value of hot"] * n
    assert loader.count("hot") == 1
    assert spins > 0
    s = g.stats()
    assert s["loads"] == 1 and s["gets"] == n


def test_loader_exception_reaches_every_waiter_and_is_not_cached():
    loader = Loader()
    loader.gate = threading.Event()
    loader.fail["bad"] = ValueError("database down")
    g = packice.Group("failing", "1M", loader)
    errors: List[BaseException] = []

    def reader() -> None:
        try:
            g.get("bad")
        except packice.PackiceError as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(10)]
    for t in threads:
        t.start()
    wait_for_gets(g, 10)
    loader.gate.set()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == 10 and loader.count("bad") == 1
    for e in errors:
        assert isinstance(e, packice.Unavailable) and isinstance(e, ConnectionError)
        assert e.name == "unavailable"
        assert "ValueError" in e.message and "database down" in e.message
        assert "'bad'" in e.message and "failing" in e.message
    # Not cached: the next get calls the loader again, and a healed loader's value is kept.
    with pytest.raises(packice.Unavailable):
        g.get("bad")
    assert loader.count("bad") == 2
    del loader.fail["bad"]
    assert g.get("bad") == b"value of bad"
    assert g.get("bad") == b"value of bad"
    assert loader.count("bad") == 3
    assert g.stats()["load_errors"] == 2


def test_loader_answers_become_status_codes():
    def load(key: str):
        if key == "none":
            return None
        if key == "keyerror":
            return {}[key]
        if key == "notfound":
            raise packice.NotFound("no such user")
        if key == "invalid":
            raise packice.InvalidArgument("ids are numbers")
        if key == "int":
            return 42
        raise RuntimeError("boom")

    g = packice.Group("codes", "1M", load)
    with pytest.raises(packice.NotFound, match="returned None"):
        g.get("none")
    with pytest.raises(packice.NotFound, match="KeyError"):
        g.get("keyerror")
    with pytest.raises(packice.NotFound) as e:
        g.get("notfound")
    assert e.value.message == "no such user"
    with pytest.raises(packice.InvalidArgument) as e:
        g.get("invalid")
    assert e.value.message == "ids are numbers"
    with pytest.raises(packice.Internal, match="returned int"):
        g.get("int")
    with pytest.raises(packice.Unavailable, match="RuntimeError.*boom"):
        g.get("other")


def test_set_delete_and_ttl():
    loader = Loader()
    g = packice.Group("kv", "1M", loader)
    g.set("a", b"stored")
    g.set("b", "text")
    assert g.get("a") == b"stored" and g.get("b") == b"text"
    assert loader.calls == []
    g.delete("a")
    g.delete("never-there")
    assert g.get("a") == b"value of a"
    assert loader.count("a") == 1
    g.set("short", b"x", ttl="200ms")
    assert g.get("short") == b"x"
    time.sleep(0.4)
    assert g.get("short") == b"value of short"  # expired: loaded
    s = g.stats()
    assert s["items"] == 3 and s["bytes"] > 0


def test_group_ttl_expires_loaded_values():
    loader = Loader()
    g = packice.Group("ttl", "1M", loader, ttl=0.2, policy="lru")
    g.get("k")
    g.get("k")
    assert loader.count("k") == 1
    time.sleep(0.4)
    g.get("k")
    assert loader.count("k") == 2


def test_load_timeout_and_the_load_runs_on():
    loader = Loader(delay=1.0)
    g = packice.Group("timeouts", "1M", loader, load_timeout="100ms")
    t0 = time.monotonic()
    with pytest.raises(packice.Timeout):
        g.get("slow")
    assert time.monotonic() - t0 < 0.8
    time.sleep(1.3)  # the abandoned load finished and filled the cache
    assert g.get("slow") == b"value of slow"
    assert loader.count("slow") == 1
    assert g.stats()["load_timeouts"] == 1


def test_dropping_a_group_waits_for_its_loads():
    finished = threading.Event()

    def load(key: str) -> bytes:
        time.sleep(0.5)
        finished.set()
        return b"late"

    g = packice.Group("dropped", "1M", load, load_timeout=0.05)
    with pytest.raises(packice.Timeout):
        g.get("k")
    assert not finished.is_set()
    del g
    gc.collect()
    assert finished.is_set()  # ~Group waited, with the GIL released, for the load to end


def test_loader_may_get_other_keys_of_its_group():
    holder: dict = {}

    def load(key: str) -> bytes:
        if key.startswith("outer:"):
            return b"<" + holder["g"].get("inner:" + key[6:]) + b">"
        return key.encode()

    g = packice.Group("nested", "1M", load)
    holder["g"] = g
    assert g.get("outer:x") == b"<inner:x>"
    assert g.stats()["loads"] == 2
    holder.clear()


def test_bad_arguments():
    with pytest.raises(packice.InvalidArgument, match="lru2"):
        packice.Group("g", "1M", str.encode, policy="fifo")
    with pytest.raises(packice.InvalidArgument, match="callable"):
        packice.Group("g", "1M", b"not a function")
    with pytest.raises(packice.InvalidArgument, match="group name"):
        packice.Group("bad name!", "1M", str.encode)
    with pytest.raises(packice.InvalidArgument, match="capacity"):
        packice.Group("g", 0, str.encode)
    with pytest.raises(packice.InvalidArgument, match="load_timeout"):
        packice.Group("g", "1M", str.encode, load_timeout=0)
    g = packice.Group("g", "1M", str.encode, max_value=10)
    with pytest.raises(packice.InvalidArgument):
        g.get("")
    with pytest.raises(packice.InvalidArgument):
        g.get("a key longer than ten bytes")  # its loaded value is too
    with pytest.raises(packice.InvalidArgument):
        g.set("k", b"x" * 11)
    with pytest.raises(packice.InvalidArgument):
        g.set("k", 12)  # type: ignore[arg-type]


def test_exit_with_a_load_running_is_clean():
    # The interpreter exits while a load it gave up on still runs in Python: the atexit hook
    # waits for it, then no load thread touches the finalizing interpreter.
    proc = run_python(
        "import time, packice\n"
        "def load(key):\n"
        "    time.sleep(0.5)\n"
        "    return b'v'\n"
        "g = packice.Group('exit', '1M', load, load_timeout=0.05)\n"
        "try:\n"
        "    g.get('k')\n"
        "except packice.Timeout:\n"
        "    print('timeout')\n",
        timeout=30,
    )
    assert proc.stdout.strip() == "timeout"


# --- client.group(name): a node's groups -----------------------------------------------------


class Origin:
    """tests/origin.py under /usr/bin/python3: serves the files of its own directory on a port
    the kernel picks (its first stdout line, "PORT n"); one stderr line per request."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="pkorigin-")
        self.root = os.path.join(self.dir, "root")
        os.makedirs(self.root)
        self.log_path = os.path.join(self.dir, "origin.log")
        self._log = open(self.log_path, "wb")
        argv = ["/usr/bin/python3", str(SOURCE_DIR / "tests" / "origin.py"), self.root]
        record_exec(argv[0])
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._log, preexec_fn=_die_with_parent
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"origin.py did not start: {line!r}")
        self.port = int(m.group(1))

    def put(self, path: str, value: bytes) -> None:
        full = Path(self.root, path)
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(value)

    def fail_with(self, path: str, status: int) -> None:
        self.put(path + ".status", f"{status}\norigin is sick\n".encode())

    def requests(self, path: str) -> int:
        with open(self.log_path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return sum(1 for line in lines if line.startswith(f"origin GET /{path} "))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def origin() -> Iterator[Origin]:
    o = Origin()
    yield o
    o.stop()


@pytest.fixture
def group_node(start_node, origin):
    """A packiced with gRPC and HTTP ports and the group "users" over the origin."""
    return start_node(
        "--store",
        "memory",
        "--capacity",
        "256M",
        "--grpc",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--group",
        f"users=http://127.0.0.1:{origin.port}/users/{{key}}",
    )


@pytest.fixture(params=["grpc", "http"])
def remote(request, group_node):
    url = group_node.grpc_url if request.param == "grpc" else group_node.http_url
    assert url, group_node.log()
    client = packice.connect(url)
    yield client
    client.close()


def test_remote_miss_then_hit(remote, origin):
    origin.put("users/42", b"alice")
    users = remote.group("users")
    assert users.name == "users"
    assert users.get("42") == b"alice"
    assert users.get("42") == b"alice"
    assert origin.requests("users/42") == 1
    s = users.stats()
    assert (s["gets"], s["hits"], s["misses"], s["loads"]) == (2, 1, 1, 1)
    assert s["capacity_bytes"] > 0
    assert [g["name"] for g in remote.groups()] == ["users"]
    assert "127.0.0.1" in remote.groups()[0]["origin"]


def test_remote_concurrent_misses_load_once(remote, origin):
    origin.put("users/7", b"bob")
    origin.put("users/7.delay", b"0.3")
    users = remote.group("users")
    results: List[object] = []

    def reader() -> None:
        results.append(users.get("7"))

    threads = [threading.Thread(target=reader) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [b"bob"] * 20
    assert origin.requests("users/7") == 1


def test_remote_errors(remote, origin):
    with pytest.raises(packice.NotFound) as e:
        remote.group("nope").get("1")
    assert e.value.code == 1 and e.value.name == "not_found"
    assert "users" in e.value.message  # the message lists the node's groups
    with pytest.raises(packice.NotFound):
        remote.group("users").get("missing")  # the origin's 404
    origin.fail_with("users/sick", 500)
    with pytest.raises(packice.Unavailable):
        remote.group("users").get("sick")
    with pytest.raises(packice.Unavailable):
        remote.group("users").get("sick")
    assert origin.requests("users/sick") == 2  # not cached
    with pytest.raises(packice.InvalidArgument):
        remote.group("bad name!").get("1")


def test_remote_set_delete(remote, origin):
    users = remote.group("users")
    users.set("43", b"carol")
    users.set("44", "dave", ttl="1h")
    assert users.get("43") == b"carol" and users.get("44") == b"dave"
    users.delete("43")
    users.delete("43")
    origin.put("users/43", b"from origin")
    assert users.get("43") == b"from origin"
    assert origin.requests("users/44") == 0


def test_groups_need_grpc_or_http(group_node):
    with packice.connect(group_node.url) as c:  # uds://
        with pytest.raises(packice.InvalidArgument) as e:
            c.group("users")
        assert "gRPC and HTTP" in e.value.message
        assert "grpc://" in e.value.message and "http://" in e.value.message
        with pytest.raises(packice.InvalidArgument):
            c.groups()
    with packice.connect(packice.MemoryPeer(capacity="16M")) as c:
        with pytest.raises(packice.InvalidArgument, match="packice.Group"):
            c.group("users")


def test_closed_client_group_calls_fail(group_node):
    c = packice.connect(group_node.grpc_url)
    users = c.group("users")
    c.close()
    with pytest.raises(packice.WrongState):
        users.get("42")
