"""The queue from Python (client.queue): a packiced of this build with its own queue directory,
over the Unix socket: writers and readers of groups, dict records, a blocked reader woken by an
append while other threads run (the GIL released), the asyncio form, export and import, errors."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import packice


@pytest.fixture
def node(start_node, tmp_path):
    return start_node("--store", "memory", "--capacity", "64M", "--queue-dir", str(tmp_path / "q"))


@pytest.fixture
def client(node):
    c = packice.connect(node.url)
    yield c
    c.close()


def test_writers_and_group_readers_round_trip(client):
    events = client.queue("events")
    events.create(buckets=3)
    with pytest.raises(packice.AlreadyExists):
        events.create()
    assert [t["name"] for t in client.queue_topics()] == ["events"]
    assert client.queue_topics()[0]["buckets"] == 3

    w = events.writer()
    assert w.buckets == 3
    bucket, offset = w.put({"user": 7, "action": "click"}, key="user-7", headers={"src": "web"})
    assert offset == 0
    placed = w.put_batch([(f"v{i}", f"k{i % 5}") for i in range(30)])
    assert len(placed) == 30

    r = events.reader(group="billing")
    got = []
    while len(got) < 31:
        part = r.get(limit=10, timeout=2.0)
        assert part, got
        got.extend(part)
    dict_rec = [g for g in got if g.key == b"user-7"][0]
    assert dict_rec.value == {"user": 7, "action": "click"}
    assert dict_rec.header("src") == "web"
    assert dict_rec.bucket == bucket and dict_rec.timestamp_ms > 0
    by_key = {}
    for g in got:
        if g.key != b"user-7":
            by_key.setdefault(g.key, []).append(g.value)
    for k, values in by_key.items():  # one key's records in the order written
        i = int(k[1:])
        assert values == [f"v{j}".encode() for j in range(30) if j % 5 == i]
    r.commit()
    st = events.stat()
    assert st["lag"] == {"billing": 0}
    assert sum(b["records_in"] for b in st["buckets"]) == 31

    # A new reader of the group resumes after the commit: nothing left.
    assert events.reader(group="billing").get(limit=10, timeout=0.1) == []
    # Another group starts at the beginning.
    assert len(events.reader(group="audit").get(limit=100, timeout=0)) == 31
    # The seed's get(offset, limit) on one bucket.
    first = events.read(bucket, 0, limit=2)
    assert first and [x.offset for x in first] == list(range(len(first)))


def test_schemas_check_dicts_and_old_records_read_under_the_newest(client):
    users = client.queue("users")
    users.create()
    assert users.schemas() == []
    v1 = {"fields": [{"name": "user", "type": "int", "required": True},
                     {"name": "action", "type": "string"}]}
    assert users.set_schema(v1) == 1
    assert users.set_schema(v1) == 1  # the same fields: no new version
    w = users.writer()
    w.put({"user": 1, "action": "click"})
    with pytest.raises(packice.InvalidArgument, match="field 'user' is int, not string"):
        w.put({"user": "one"})
    with pytest.raises(packice.InvalidArgument, match="is not a JSON object"):
        w.put(b"raw bytes")
    with pytest.raises(packice.InvalidArgument, match="a new field is optional"):
        users.set_schema({"fields": v1["fields"] + [{"name": "n", "type": "int",
                                                     "required": True}]})
    with pytest.raises(packice.InvalidArgument, match="not one of bool int"):
        users.set_schema({"fields": [{"name": "user", "type": "integer"}]})
    v2 = {"fields": v1["fields"] + [{"name": "score", "type": "float", "default": 0.5}]}
    assert users.set_schema(v2) == 2
    w.put({"user": 2, "score": 3.5})
    got = users.read(0, 0, limit=10)
    assert [g.value for g in got] == [{"user": 1, "action": "click", "score": 0.5},
                                      {"user": 2, "score": 3.5}]
    assert [g.header("schema-version") for g in got] == ["2", "2"]
    versions = users.schemas()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["fields"][2] == {"name": "score", "type": "float", "default": 0.5}


def test_a_blocked_reader_releases_the_gil_and_wakes_on_append(client):
    q = client.queue("live")
    q.create()
    r = q.reader(group="g")
    result = {}

    def consume():
        t0 = time.monotonic()
        result["records"] = r.get(limit=5, timeout=20.0)
        result["took"] = time.monotonic() - t0

    t = threading.Thread(target=consume)
    t.start()
    # The main thread keeps running Python while the reader waits on the node.
    spins = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        spins += 1
    assert spins > 1000
    q.writer().put(b"hello")
    t.join(10)
    assert not t.is_alive()
    assert [x.value for x in result["records"]] == [b"hello"]
    assert result["took"] < 10


def test_asyncio_form(client):
    q = client.queue("aio")
    q.create(buckets=2)

    async def main():
        w = q.writer()
        r = q.reader(group="a")
        reading = asyncio.create_task(r.aget(limit=10, timeout=10.0))
        await asyncio.sleep(0.1)
        await w.aput_batch([b"x", b"y"])
        got = await reading
        while len(got) < 2:
            got += await r.aget(limit=10, timeout=2.0)
        await r.acommit()
        return sorted(x.value for x in got)

    assert asyncio.run(main()) == [b"x", b"y"]
    assert q.stat()["lag"] == {"a": 0}


def test_export_import_and_errors(client, tmp_path):
    q = client.queue("src")
    q.create(buckets=2, retention_age=3600)
    q.writer().put_batch([b"1", b"2", {"n": 3}])
    q.export(tmp_path / "src.pkq")
    copy = client.queue("copy")
    copy.import_from(tmp_path / "src.pkq")
    assert sorted(str(r.value) for r in copy.reader().get(10)) == sorted(
        str(r.value) for r in q.reader().get(10)
    )
    (tmp_path / "torn.pkq").write_bytes((tmp_path / "src.pkq").read_bytes()[:-5])
    with pytest.raises(packice.DataLoss):
        client.queue("torn").import_from(tmp_path / "torn.pkq")

    with pytest.raises(packice.NotFound):
        client.queue("missing").writer()
    with pytest.raises(packice.InvalidArgument):
        client.queue("bad/name").create()
    with pytest.raises(packice.InvalidArgument):
        q.create(fsync="sometimes")
    with pytest.raises(packice.InvalidArgument):
        q.create(storage="cold")
    # A --store memory node has no object store for a tiered topic's segments.
    with pytest.raises(packice.InvalidArgument):
        client.queue("tiered").create(storage="tiered")
    assert {t["name"]: t["storage"] for t in client.queue_topics()}["src"] == "log"
    with pytest.raises(packice.InvalidArgument):
        q.reader().get(limit=-1)
    with pytest.raises(packice.InvalidArgument):
        q.writer().put(b"x" * (5 << 20))
    with pytest.raises(packice.InvalidArgument):
        q.writer().put(12345)
    with pytest.raises(packice.OutOfRange):
        q.read(0, 1000)
    q.delete()
    with pytest.raises(packice.NotFound):
        q.stat()


def test_an_http_client_has_no_queue(start_node):
    n = start_node("--store", "memory", "--capacity", "64M", "--http", "127.0.0.1:0")
    with packice.connect(n.http_url) as c:
        with pytest.raises(packice.InvalidArgument):
            c.queue("x")
