"""The namespaced KV from Python (client.kv): a packiced of this build with its own KV
directory, reached over the Unix socket (and over gRPC where the transport matters)."""

from __future__ import annotations

import threading
import time

import pytest

import packice

from conftest import run_python


@pytest.fixture
def kv_node(start_node, tmp_path):
    return start_node(
        "--store",
        "memory",
        "--capacity",
        "64M",
        "--kv-dir",
        str(tmp_path / "kv"),
        "--grpc",
        "127.0.0.1:0",
    )


@pytest.fixture(params=["uds", "grpc"])
def client(request, kv_node):
    url = kv_node.url if request.param == "uds" else kv_node.grpc_url
    assert url, kv_node.log()
    c = packice.connect(url)
    yield c
    c.close()


@pytest.fixture
def uds(kv_node):
    c = packice.connect(kv_node.url)
    yield c
    c.close()


@pytest.fixture
def kv(uds):
    ns = uds.kv("/test/ns")
    ns.create(engine="memtable")
    return ns


def test_crud_bytes_and_str(client):
    kv = client.kv("/team/ns")
    kv.create()
    r1 = kv.put("config/a", "42")
    assert r1 == 1
    assert kv.get("config/a") == b"42"
    assert kv.get(b"config/a") == b"42"
    r2, prev = kv.put(b"config/a", b"\x00\xff", prev_kv=True)
    assert r2 == 2 and prev.value == b"42" and prev.mod_revision == 1
    item = kv.get_item("config/a")
    assert item == packice.KvItem(b"config/a", b"\x00\xff", 1, 2, 2, 0)
    kv["h\u00e9"] = "w\u00f6rld"
    assert kv["h\u00e9"] == "w\u00f6rld".encode()
    assert "h\u00e9" in kv and "nope" not in kv
    del kv["h\u00e9"]
    with pytest.raises(KeyError):
        kv["h\u00e9"]
    rev, prev = kv.delete("config/a", prev_kv=True)
    assert rev == 5 and prev.value == b"\x00\xff"
    with pytest.raises(packice.NotFound):
        kv.get("config/a")
    with pytest.raises(packice.NotFound):
        kv.delete("config/a")


def test_cas_errors(kv):
    r = kv.put("k", "v", if_mod_revision=0)  # create if absent
    with pytest.raises(packice.AlreadyExists):
        kv.put("k", "again", if_mod_revision=0)
    with pytest.raises(packice.WrongState) as e:
        kv.put("k", "v2", if_mod_revision=r + 7)
    assert str(r) in e.value.message
    with pytest.raises(packice.NotFound):
        kv.put("absent", "v", if_mod_revision=3)
    r2 = kv.put("k", "v2", if_mod_revision=r)
    assert kv.get("k") == b"v2"
    with pytest.raises(packice.WrongState):
        kv.delete("k", if_mod_revision=r)
    assert kv.delete("k", if_mod_revision=r2) == r2 + 1
    with pytest.raises(packice.InvalidArgument):
        kv.put("k", "v", if_mod_revision=-1)


def test_ttl(uds):
    kv = uds.kv("/ttl")
    kv.create(default_ttl="300ms")
    kv.put("default", "x")
    kv.put("own", "x", ttl=0.3)
    kv.put("forever", "x", ttl=0)
    now_ms = time.time() * 1000
    assert 0 < kv.get_item("own").expires_unix_ms - now_ms <= 400
    assert kv.get_item("default").expires_unix_ms > 0
    assert kv.get_item("forever").expires_unix_ms == 0
    time.sleep(0.5)
    for key in ("own", "default"):
        with pytest.raises(packice.NotFound):
            kv.get(key)
    assert kv.get("forever") == b"x"
    assert uds.kv_namespaces("/ttl")[0]["default_ttl"] == pytest.approx(0.3)
    with pytest.raises(packice.InvalidArgument):
        kv.put("k", "v", ttl="soon")


def test_scan_across_pages(client):
    kv = client.kv("/scan")
    kv.create(engine="memtable")
    keys = [f"k/{i:03d}".encode() for i in range(50)]
    assert kv.multi_put({k: k + b"!" for k in keys}) == list(range(1, 51))
    kv.put("other", "x")
    items = list(kv.scan("k/", page_size=7))
    assert [i.key for i in items] == keys
    assert all(i.value == i.key + b"!" for i in items)
    assert [i.key for i in kv.scan("k/", page_size=7, limit=10)] == keys[:10]
    assert [i.key for i in kv.scan(start="k/010", end="k/020", page_size=3)] == keys[10:20]
    assert [i.key for i in kv.scan("k/", after="k/045", page_size=2)] == keys[46:]
    only = list(kv.scan("k/", keys_only=True, page_size=9))
    assert len(only) == 50 and all(i.value == b"" for i in only)
    assert list(kv) == keys + [b"other"]
    with pytest.raises(packice.InvalidArgument):
        list(kv.scan("k/", start="a"))
    with pytest.raises(packice.InvalidArgument):
        kv.scan(page_size=0)


def test_scan_swisstable(kv, uds):
    sw = uds.kv("/swiss")
    sw.create(engine="swisstable", write_mode="nolinear", fsync="never")
    for i in range(20):
        sw.put(f"{i:02d}", str(i))
    assert [i.key for i in sw.scan(page_size=6)] == [f"{i:02d}".encode() for i in range(20)]


def test_batch(kv):
    kv.put("gone", "x")
    rev = kv.batch([("put", "a", "1"), ("put", b"b", b"2", {"ttl": 60}), ("delete", "gone")])
    assert rev == 2
    assert kv.get_item("a").mod_revision == kv.get_item("b").mod_revision == 2
    assert kv.get_item("b").expires_unix_ms > 0
    with pytest.raises(packice.NotFound):
        kv.batch([("put", "c", "3"), ("delete", "missing")])
    assert "c" not in kv  # nothing was written
    assert kv.batch([("put", "c", "3"), ("delete", "missing", {"ignore_missing": True})]) == 3
    with pytest.raises(packice.WrongState):
        kv.batch([("put", "a", "x", {"if_mod_revision": 1}), ("put", "d", "4")])
    assert "d" not in kv
    with pytest.raises(packice.InvalidArgument):
        kv.batch([("put", "a", "1"), ("put", "a", "2")])  # a key twice
    with pytest.raises(packice.InvalidArgument):
        kv.batch([("upsert", "a", "1")])
    with pytest.raises(packice.InvalidArgument):
        kv.batch([("delete", "a", {"ttl": 1})])


def test_multi_get_and_put(client):
    kv = client.kv("/multi")
    kv.create()
    revs = kv.multi_put([(f"k{i}", str(i)) for i in range(2000)])  # two messages
    assert revs == list(range(1, 2001))
    got = kv.multi_get([f"k{i}" for i in range(0, 2000, 3)] + ["absent"])
    assert got[:-1] == [str(i).encode() for i in range(0, 2000, 3)] and got[-1] is None
    # More than one reply's 2 MiB of values: asked again until every key is answered.
    big = b"v" * (700 << 10)
    kv.multi_put({f"big{i}": big for i in range(5)})
    assert kv.multi_get([f"big{i}" for i in range(5)]) == [big] * 5
    with pytest.raises(packice.InvalidArgument) as e:
        kv.multi_put([("ok1", "1"), ("huge", b"x" * ((1 << 20) + 1)), ("ok2", "2")])
    results = e.value.results
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], packice.InvalidArgument)
    assert kv.get("ok1") == b"1" and kv.get("ok2") == b"2"
    with pytest.raises(packice.NotFound):  # no such namespace: the call's error
        client.kv("/no/such").multi_get(["a"])


def test_watch_order_with_prev_kv(kv):
    with kv.watch("w/", prefix=True, prev_kv=True) as w:
        r1 = kv.put("w/a", "1")
        kv.put("other", "x")
        r2 = kv.put("w/a", "2")
        r3 = kv.batch([("put", "w/b", "b"), ("delete", "w/a")])
        events = [w.next(timeout=5) for _ in range(4)]
    assert [(e.type, e.key, e.value, e.mod_revision) for e in events] == [
        ("put", b"w/a", b"1", r1),
        ("put", b"w/a", b"2", r2),
        ("put", b"w/b", b"b", r3),
        ("delete", b"w/a", b"", r3),
    ]
    assert events[0].prev is None
    assert events[1].prev.value == b"1" and events[1].version == 2
    assert events[3].prev.value == b"2"
    assert w.closed


def test_watch_over_both_transports(client):
    kv = client.kv("/watched")
    kv.create()
    r1 = kv.put("a", "1")
    with kv.watch("a", start_revision=r1, prev_kv=True) as w:
        kv.put("a", "2")
        kv.delete("a")
        got = [w.next(timeout=5) for _ in range(3)]
    assert [(e.type, e.value, e.prev.value if e.prev else None) for e in got] == [
        ("put", b"1", None),
        ("put", b"2", b"1"),
        ("delete", b"", b"2"),
    ]
    assert w.resume_revision == r1 + 3


def test_watch_from_past_revision_and_resume(kv):
    revs = [kv.put(f"k{i}", str(i)) for i in range(5)]
    w = kv.watch(start_revision=revs[1])
    got = [w.next(timeout=5) for _ in range(3)]
    assert [e.key for e in got] == [b"k1", b"k2", b"k3"]
    assert w.resume_revision == revs[4]
    w.close()
    w2 = kv.watch(start_revision=w.resume_revision)
    assert w2.next(timeout=5).key == b"k4"
    w2.close()
    with pytest.raises(packice.InvalidArgument):
        kv.watch(start_revision=revs[-1] + 5)  # a future revision


def test_watch_timeout_and_close(kv):
    w = kv.watch("k")
    t0 = time.monotonic()
    with pytest.raises(packice.Timeout):
        w.next(timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 3
    kv.put("k", "1")
    assert w.next(timeout=5).value == b"1"  # the watch went on after the timeout
    w.close()
    w.close()  # idempotent
    assert list(w) == []
    with pytest.raises(packice.Aborted) as e:
        w.next()
    assert e.value.resume_revision == 2


def test_watch_in_another_thread(kv):
    """A thread blocked on a watch holds no GIL: the main thread writes meanwhile, and a close
    from the main thread ends the thread's loop."""
    w = kv.watch()
    seen = []

    def consume():
        for event in w:
            seen.append(event.key)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(100):
        kv.put(f"k{i:03d}", "x")
    deadline = time.monotonic() + 10
    while len(seen) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [f"k{i:03d}".encode() for i in range(100)]
    w.close()  # while the thread waits
    t.join(5)
    assert not t.is_alive()


def test_watch_ends_when_namespace_dropped(uds):
    kv = uds.kv("/dropped")
    kv.create()
    kv.put("a", "1")
    w = kv.watch()
    kv.drop()
    with pytest.raises(packice.NotFound) as e:
        w.next(timeout=5)
    assert e.value.resume_revision == 2
    with pytest.raises(packice.NotFound):
        kv.get("a")


def test_watch_too_slow_resumes(uds, kv_node):
    kv = uds.kv("/slow")
    kv.create()
    w = kv.watch()
    for start in range(0, 6000, 1000):  # past the client's 4096 buffered events
        kv.multi_put({f"k{i}": "x" for i in range(start, start + 1000)})
    n = 0
    with pytest.raises(packice.OutOfCapacity) as e:
        while True:
            w.next(timeout=10)
            n += 1
    assert "too slow" in e.value.message
    assert e.value.resume_revision == n + 1
    w2 = kv.watch(start_revision=e.value.resume_revision)
    assert w2.next(timeout=5).mod_revision == n + 1
    w2.close()


def test_ctrl_c_interrupts_a_watch(kv_node):
    code = f"""
import os, signal, threading, time, packice
kv = packice.connect({kv_node.url!r}).kv("/sig")
kv.create()
w = kv.watch()
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    w.next()
except KeyboardInterrupt:
    print("interrupted after", round(time.monotonic() - t0, 1))
"""
    out = run_python(code, timeout=30).stdout
    assert out.startswith("interrupted after")
    assert float(out.split()[-1]) < 3


def test_namespaces(uds):
    assert uds.kv_namespaces() == []
    uds.kv("/team/b").create(engine="memtable", write_mode="nolinear")
    uds.kv("/team/a").create(fsync="interval", fsync_interval="50ms")
    uds.kv("/other").create(fsync="never")
    uds.kv("/team/a").put("x", "1")
    listed = uds.kv_namespaces("/team/")
    assert [n["path"] for n in listed] == ["/team/a", "/team/b"]
    a, b = listed
    assert (a["engine"], a["write_mode"], a["fsync"]) == ("swisstable", "linear", "interval")
    assert a["fsync_interval"] == pytest.approx(0.05)
    assert (a["revision"], a["keys"]) == (1, 1)
    assert (b["engine"], b["write_mode"], b["revision"], b["keys"]) == ("memtable", "nolinear", 0, 0)
    assert uds.kv("/other").info()["fsync"] == "never"
    with pytest.raises(packice.AlreadyExists):
        uds.kv("/team/a").create()
    uds.kv("/team/a").drop()
    assert [n["path"] for n in uds.kv_namespaces()] == ["/other", "/team/b"]
    with pytest.raises(packice.NotFound):
        uds.kv("/team/a").drop()
    with pytest.raises(packice.NotFound):
        uds.kv("/team/a").info()


def test_bad_input(uds, kv):
    for path in ("no/slash", "/trailing/", "/a//b", "/sp ace", "/a/.."):
        with pytest.raises(packice.InvalidArgument):
            uds.kv(path).create()
        with pytest.raises(ValueError):  # InvalidArgument is a ValueError
            uds.kv(path).get("k")
    with pytest.raises(packice.InvalidArgument):
        uds.kv(42)
    with pytest.raises(packice.InvalidArgument) as e:
        kv.put("big", b"x" * ((1 << 20) + 1))
    assert "1048576" in e.value.message or "1 MiB" in e.value.message
    with pytest.raises(packice.InvalidArgument):
        kv.put("", "empty key")
    with pytest.raises(packice.InvalidArgument):
        kv.put("k", 42)
    with pytest.raises(packice.InvalidArgument):
        uds.kv("/x").create(engine="btree")
    with pytest.raises(packice.InvalidArgument):
        uds.kv("/x").create(fsync="interval", fsync_interval=120)
    with pytest.raises(packice.NotFound):
        uds.kv("/never/created").put("k", "v")


def test_kv_needs_uds_or_grpc(start_node):
    node = start_node("--store", "memory", "--capacity", "64M", "--http", "127.0.0.1:0")
    c = packice.connect(node.http_url)
    with pytest.raises(packice.InvalidArgument) as e:
        c.kv("/team/ns")
    assert "uds://" in e.value.message and "grpc://" in e.value.message
    with pytest.raises(packice.InvalidArgument):
        c.kv_namespaces()
    peer = packice.connect(packice.MemoryPeer("1M"))
    with pytest.raises(packice.InvalidArgument):
        peer.kv("/team/ns")


def test_node_without_kv(node):
    c = packice.connect(node.url)  # --store memory and no --kv-dir: no KV
    kv = c.kv("/team/ns")  # nothing sent yet
    with pytest.raises(packice.PackiceError):
        kv.create()
