"""The Python API over every transport: an in-process MemoryPeer (direct), a packiced node over
its Unix socket (uds) and over HTTP."""

from __future__ import annotations

import datetime
import gc
import threading
import time

import numpy as np
import pytest

import packice

MiB = 1 << 20


@pytest.fixture(params=["peer", "uds", "http"])
def client(request, start_node):
    if request.param == "peer":
        c = packice.connect(packice.MemoryPeer(capacity="256M"))
    else:
        node = start_node("--store", "memory", "--capacity", "1G", "--http", "127.0.0.1:0")
        c = packice.connect(node.url if request.param == "uds" else node.http_url)
    c.transport = request.param
    yield c
    c.close()


def test_seed_walkthrough(client):
    # Seed 000, part 6, as written there.
    with client.create(meta={"ttl": 60}) as obj:
        obj.write(b"Hello Packice")
        obj.seal()
    with client.get(obj.id) as obj:
        assert obj.buffer.tobytes() == b"Hello Packice"
        assert obj.ttl == 60
        assert obj.meta == {}
    assert obj.released


def test_create_sized_writes_through_buffer(client):
    with client.create("doc/1", size=4 * MiB, meta={"dtype": "u8", "layer": 3}) as obj:
        assert obj.id == "doc/1" and obj.size == 4 * MiB and not obj.sealed
        view = obj.buffer
        assert not view.readonly and view.nbytes == 4 * MiB and view.format == "B"
        assert view[:16].tobytes() == bytes(16)  # zero at first
        obj.buffer[0:5] = b"hello"
        view[4 * MiB - 3 :] = b"end"
        del view
        info = obj.seal()
    assert info.key == "doc/1" and info.size == 4 * MiB and info.state == "sealed"
    assert info.meta == {"dtype": "u8", "layer": "3"}
    assert info.ttl is None and info.expires is None
    assert obj.info == info and obj.sealed
    with client.get("doc/1") as r:
        assert len(r) == 4 * MiB
        assert r.buffer[:5].tobytes() == b"hello"
        assert r.buffer[-3:].tobytes() == b"end"
        assert r.info.version == info.version


def test_write_is_file_like_and_seal_truncates(client):
    with client.create("w", size=100) as obj:
        assert obj.write(b"abc") == 3
        assert obj.write(bytearray(b"def")) == 3
        assert obj.tell() == 6
        obj.write(memoryview(b"XY"), offset=0)
        assert obj.tell() == 2
        info = obj.seal(size=6)
    assert info.size == 6
    assert client.get_bytes("w") == b"XYcdef"


def test_unsized_create_collects_writes(client):
    with client.create("streamed", ttl="10m") as obj:
        assert obj.id == "streamed"
        for i in range(100):
            obj.write(b"%d," % i)
        with pytest.raises(packice.WrongState):
            obj.buffer
        info = obj.seal()
    assert info.ttl == 600
    assert client.get_bytes("streamed") == b"".join(b"%d," % i for i in range(100))
    # A generated id is known once sealed.
    w = client.create()
    assert w.id is None
    w.write(b"x" * (200 * 1024))  # large: not inline
    assert len(w.seal().key) == 32 and w.id == w.info.key
    assert client.stat(w.id).size == 200 * 1024


def test_reader_buffer_is_read_only(client):
    client.put("ro", b"\x01" * (128 * 1024))
    with client.get("ro") as r:
        view = r.buffer
        assert view.readonly
        with pytest.raises(TypeError):
            view[0] = 2
        arr = np.frombuffer(r.buffer, dtype=np.uint8)
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 2
        with pytest.raises(ValueError):
            arr.flags.writeable = True
        assert r.read() == b"\x01" * (128 * 1024)


def test_numpy_shares_memory(client):
    n = 1 << 20
    with client.create("tensor", size=n * 4) as obj:
        a = np.frombuffer(obj.buffer, dtype=np.float32)
        assert a.flags.writeable
        a[:] = np.arange(n, dtype=np.float32)  # straight into the object
        b = np.frombuffer(obj.buffer, dtype=np.float32)
        assert np.shares_memory(a, b)
        assert b[12345] == 12345
        del a, b
        obj.seal()
    with client.get("tensor") as r:
        x = np.frombuffer(r.buffer, dtype=np.float32)
        y = np.asarray(r.buffer)
        assert np.shares_memory(x, y)
        assert isinstance(x.base, memoryview) and x.base.readonly
        np.testing.assert_array_equal(x, np.arange(n, dtype=np.float32))


def test_put_get_stat_list_delete(client):
    small = client.put("k/small", b"tiny", ttl=60, meta={"a": "b"})
    big = client.put("k/big", np.ones(300_000, dtype=np.uint8))  # any buffer
    assert small.size == 4 and small.meta == {"a": "b"} and small.ttl == 60
    assert big.size == 300_000
    assert client.get_bytes("k/small") == b"tiny"
    assert client.get_bytes("k/big") == b"\x01" * 300_000
    st = client.stat("k/big")
    assert st.key == "k/big" and st.size == 300_000 and st.state == "sealed" and st.tier
    client.put("other", b"x")
    assert [i.key for i in client.list("k/")] == ["k/big", "k/small"]
    assert [i.key for i in client.list()] == ["k/big", "k/small", "other"]
    assert [i.key for i in client.list(limit=2)] == ["k/big", "k/small"]
    assert [i.key for i in client.list(start_after="k/small")] == ["other"]
    client.delete("k/small")
    with pytest.raises(packice.NotFound):
        client.get("k/small")
    with pytest.raises(packice.NotFound):
        client.delete("k/small")
    assert client.put(None, b"generated").key  # no key: an id


def test_list_pages(client):
    for i in range(1100):
        client.put(f"p/{i:05d}", b"v")
    keys = [i.key for i in client.list("p/")]
    assert keys == [f"p/{i:05d}" for i in range(1100)]
    assert len(client.list("p/", limit=1050)) == 1050


def test_leaving_with_block_without_seal_discards(client):
    with client.create("never", size=10) as obj:
        obj.write(b"0123456789")
    with pytest.raises(packice.NotFound):
        client.get("never")
    with pytest.raises(RuntimeError):
        with client.create("boom", size=10) as obj:
            raise RuntimeError("fails mid-write")
    with pytest.raises(packice.NotFound):
        client.stat("boom")
    with pytest.raises(packice.WrongState):
        obj.write(b"late")


def test_handle_states(client):
    w = client.create("s", size=8)
    w.seal()
    with pytest.raises(packice.WrongState):
        w.seal()
    with pytest.raises(packice.WrongState):
        w.write(b"x")
    with pytest.raises(packice.WrongState):
        w.buffer
    w.abort()  # nothing after a seal
    assert client.stat("s").size == 8
    w2 = client.create("t", size=8)
    with pytest.raises(packice.InvalidArgument):
        w2.write(b"123456789")
    with pytest.raises(ValueError):  # InvalidArgument is a ValueError
        w2.write(b"12", offset=7)
    with pytest.raises(packice.InvalidArgument):
        w2.seal(size=9)  # over the allocation: the writer stays usable
    w2.seal(size=4)
    r = client.get("t")
    r.release()
    r.release()  # idempotent
    with pytest.raises(packice.WrongState):
        r.buffer


def test_exclusive_create(client):
    client.put("x", b"1")
    with pytest.raises(packice.AlreadyExists) as e:
        w = client.create("x", size=1, exclusive=True)
        w.seal()  # over HTTP the create reaches the node with the bytes, at the seal
    assert e.value.code == 2 and e.value.name == "already_exists"
    with pytest.raises(packice.AlreadyExists):
        client.put("x", b"2", exclusive=True)


def test_ttl_forms(client):
    assert client.put("t1", b"v", ttl=datetime.timedelta(minutes=2)).ttl == 120
    assert client.put("t2", b"v", ttl="1500ms").ttl == 1.5
    assert client.put("t3", b"v", meta={"ttl": "1h", "x": "y"}).ttl == 3600
    assert client.put("t4", b"v", ttl=0).ttl is None
    with pytest.raises(packice.InvalidArgument):
        client.put("t5", b"v", ttl="soon")
    with pytest.raises(packice.InvalidArgument):
        client.put("t5", b"v", ttl=-1)
    with pytest.raises(packice.InvalidArgument):
        client.create(meta={"ttl": 5}, ttl=5)
    with pytest.raises(packice.InvalidArgument):
        client.put("t6", b"v", meta={"x": object()})


def test_object_ttl_expires(client):
    client.put("short", b"v", ttl="200ms")
    assert client.get_bytes("short") == b"v"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            client.stat("short")
        except packice.NotFound:
            return
        time.sleep(0.05)
    pytest.fail("the object did not expire")


def test_client_context_manager_closes(client):
    with client as c:
        c.put("a", b"b")
    assert client.closed
    with pytest.raises(packice.WrongState):
        client.stat("a")


# --- lifetimes of views (no transport difference: the direct transport suffices) ------------


def test_seal_refused_while_views_exist():
    peer = packice.MemoryPeer(capacity="64M")
    c = packice.connect(peer)
    w = c.create("k", size=MiB)
    arr = np.frombuffer(w.buffer, np.uint8)
    arr[:3] = [1, 2, 3]
    with pytest.raises(BufferError):
        w.seal()
    view = w.buffer[10:20]
    del arr
    with pytest.raises(BufferError):
        w.seal()
    view.release()
    assert w.seal().size == MiB
    assert c.get_bytes("k")[:4] == b"\x01\x02\x03\x00"


def test_views_keep_a_released_reader_alive():
    peer = packice.MemoryPeer(capacity="64M")
    c = packice.connect(peer)
    c.put("k", b"z" * MiB)
    with c.get("k") as r:
        arr = np.frombuffer(r.buffer, np.uint8)
        assert peer.stats()["leases"] == 1
    assert r.released
    assert peer.stats()["leases"] == 1  # the array still reads the object
    c.delete("k")
    c.put("k", b"y" * MiB)  # a new object under the key; the old one stays for its reader
    assert arr[0] == ord("z") and arr[-1] == ord("z")
    del arr
    gc.collect()
    assert peer.stats()["leases"] == 0


def test_abort_with_live_view_is_deferred():
    peer = packice.MemoryPeer(capacity="64M")
    c = packice.connect(peer)
    w = c.create("k", size=MiB)
    view = w.buffer
    w.abort()
    view[0:4] = b"late"  # still mapped; the object is gone for everyone else
    with pytest.raises(packice.NotFound):
        c.get("k")
    assert peer.stats()["creating"] == 1
    del view
    assert peer.stats()["creating"] == 0


def test_out_of_capacity_and_peer_stats():
    peer = packice.MemoryPeer(capacity="1M")
    c = packice.connect(peer)
    with pytest.raises(packice.OutOfCapacity) as e:
        c.create("big", size="2M")
    assert e.value.code == 5 and e.value.message and str(e.value).startswith("out_of_capacity: ")
    assert peer.tier == "memory"
    assert peer.stats()["capacity_bytes"] == 1 << 20


def test_gil_is_released_while_waiting_for_the_node(node):
    import os
    import signal

    c = packice.connect(node.url)
    c.put("k", b"v")
    node.signal(signal.SIGSTOP)  # the node cannot answer until SIGCONT
    try:
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("info", c.stat("k")))
        t.start()
        time.sleep(0.1)  # the thread is now blocked in stat(), waiting for the reply
        ticks = 0
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # runs only if stat() let go of the GIL
            ticks += 1
        assert t.is_alive() and ticks > 1000
    finally:
        os.kill(node.pid, signal.SIGCONT)
    t.join(10)
    assert result["info"].key == "k"


def test_writes_from_threads_in_parallel():
    peer = packice.MemoryPeer(capacity="512M")
    c = packice.connect(peer)
    errors = []

    def work(i):
        try:
            for j in range(20):
                data = bytes([i]) * (256 * 1024)
                c.put(f"t{i}/{j}", data)
                with c.get(f"t{i}/{j}") as r:
                    assert r.buffer.tobytes() == data
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(c.list()) == 80
