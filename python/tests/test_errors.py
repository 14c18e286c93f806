"""Status codes become exception classes with the code, its name and the message."""

from __future__ import annotations

import pickle
import re
import time

import pytest

import packice
from packice import errors

from conftest import SOURCE_DIR


def documented_codes():
    """(code, name) rows of the table in docs/errors.md."""
    text = (SOURCE_DIR / "docs" / "errors.md").read_text()
    return [(int(c), n) for c, n in re.findall(r"^\| (\d+) \| `(\w+)` \|", text, re.MULTILINE)]


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def test_one_class_per_documented_code():
    rows = documented_codes()
    assert len(rows) >= 14 and rows[0] == (0, "ok")
    for code, name in rows[1:]:
        cls = getattr(packice, camel(name))  # not_found -> packice.NotFound
        assert issubclass(cls, packice.PackiceError)
        assert cls.code == code and cls.name == name
        assert packice.error_class(code) is cls
        e = errors._from_status(code, "what happened")
        assert type(e) is cls and e.code == code and e.message == "what happened"
        assert str(e) == f"{name}: what happened"
        assert pickle.loads(pickle.dumps(e)).message == "what happened"
    unknown = errors._from_status(99, "from a newer node")
    assert type(unknown) is packice.PackiceError and unknown.code == 99


def test_builtin_bases():
    assert issubclass(packice.NotFound, KeyError)
    assert issubclass(packice.InvalidArgument, ValueError)
    assert issubclass(packice.Timeout, TimeoutError)
    assert issubclass(packice.Unavailable, ConnectionError)


def test_not_found_from_a_node(node):
    c = packice.connect(node.url)
    with pytest.raises(packice.NotFound) as e:
        c.get("no/such/key")
    assert e.value.code == 1 and e.value.name == "not_found"
    assert "no/such/key" in e.value.message
    with pytest.raises(KeyError):
        c.stat("no/such/key")


def test_invalid_arguments():
    c = packice.connect(packice.MemoryPeer(capacity="16M"))
    with pytest.raises(packice.InvalidArgument) as e:
        c.put("bad\nkey", b"v")
    assert e.value.code == 6 and e.value.message
    with pytest.raises(packice.InvalidArgument):
        c.put("k" * 2000, b"v")
    with pytest.raises(packice.InvalidArgument):
        packice.connect("ftp://example.com/")
    with pytest.raises(packice.InvalidArgument):
        packice.MemoryPeer(capacity=0)
    with pytest.raises(packice.InvalidArgument):
        packice.MemoryPeer(capacity="lots")


def test_unavailable_when_no_node_listens(tmp_path):
    with pytest.raises(packice.Unavailable) as e:
        packice.connect(f"uds://{tmp_path}/nobody.sock")
    assert e.value.code == 8 and e.value.message


def test_unavailable_after_the_node_goes_away(start_node):
    n = start_node("--store", "memory")
    c = packice.connect(n.url)
    c.put("k", b"v")
    n.stop()
    with pytest.raises(packice.Unavailable):
        c.stat("k")


def test_lease_expired():
    # A 1 ms lease runs out before the client's background renewal (every 10 ms at the least).
    peer = packice.MemoryPeer(capacity="16M", lease_ttl="1ms")
    c = packice.connect(peer)
    w = c.create("k", size=100)
    time.sleep(0.3)
    with pytest.raises(packice.LeaseExpired) as e:
        w.seal()
    assert e.value.code == 4 and e.value.name == "lease_expired"


def test_already_exists_and_wrong_state():
    c = packice.connect(packice.MemoryPeer(capacity="16M"))
    w = c.create("k", size=1, exclusive=True)
    with pytest.raises(packice.AlreadyExists):
        c.create("k", size=1, exclusive=True)  # being created
    w.seal()
    with pytest.raises(packice.WrongState) as e:
        w.seal()
    assert e.value.code == 3


def test_sharedfs_peer_errors(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("not a directory")
    with pytest.raises(packice.PackiceError) as e:
        packice.SharedFSPeer(f)
    assert e.value.code in (6, 11)  # invalid_argument or internal, by what the OS says
