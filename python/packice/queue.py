"""The node's queue (docs/queue.md) from Python: :meth:`packice.Client.queue`.

::

    client = packice.connect("uds:///run/packice.sock")
    events = client.queue("events")
    events.create(buckets=4)                          # once; AlreadyExists after
    w = events.writer()
    w.put({"user": 7, "action": "click"}, key="user-7")   # a dict: JSON; or bytes / str
    w.put_batch([b"a", b"b", b"c"])                   # one append per bucket
    r = events.reader(group="billing")
    for rec in r.get(limit=100, timeout=5.0):         # waits on the node for more
        print(rec.bucket, rec.offset, rec.value)
    r.commit()                                        # the group resumes after these

    async def consume():                              # the asyncio form
        recs = await r.aget(limit=100, timeout=5.0)
        await r.acommit()

A record's value is bytes; a ``dict`` (or list) is stored as its JSON in UTF-8 with the header
``content-type: application/json``, and a record with that header reads back decoded (the
documented encoding of the seed's ``put(record: dict)``); a ``str`` is stored as its UTF-8 and
reads back as bytes. Headers are ``{str: str}`` (or pairs, for repeated names). A key sends every
record with it to one bucket (``xxHash64(key) % buckets``), so they stay in order.

Calls release the GIL while they wait; a :class:`QueueReader` is for one consumer at a time
(calls from several threads take turns). The ``a``-prefixed methods run the same call in a
worker thread (:func:`asyncio.to_thread`) and are awaited.

Errors are the module's exceptions: NotFound (no topic), InvalidArgument (a bad name, a record
over 4 MiB, bad options), AlreadyExists (create), OutOfRange (an offset past a bucket's end).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _packice
from .errors import InvalidArgument

if TYPE_CHECKING:
    from . import Client

__all__ = ["Queue", "QueueRecord", "QueueWriter", "QueueReader"]

JSON_TYPE = "application/json"
_FSYNC = {"always": 0, "interval": 1, "never": 2}

Value = Union[bytes, bytearray, memoryview, str, dict, list]
Headers = Union[Dict[str, str], Sequence[Tuple[str, str]], None]


@dataclass
class QueueRecord:
    """A record read back: its place (``bucket``, ``offset``), ``key`` (bytes or None),
    ``headers`` (a list of ``(str, str)``, in order), ``value`` (bytes, or the decoded JSON of
    a dict record) and ``timestamp_ms`` (when it was appended, ms since the epoch)."""

    bucket: int
    offset: int
    key: Optional[bytes]
    headers: List[Tuple[str, str]] = field(default_factory=list)
    value: Any = b""
    timestamp_ms: int = 0

    def header(self, name: str) -> Optional[str]:
        """The first header called ``name``, or None."""
        for n, v in self.headers:
            if n == name:
                return v
        return None


def _encode(value: Value, key: Union[bytes, str, None], headers: Headers) -> tuple:
    pairs: List[Tuple[bytes, bytes]] = []
    if headers:
        items = headers.items() if isinstance(headers, dict) else headers
        for n, v in items:
            pairs.append((str(n).encode(), str(v).encode()))
    if isinstance(value, (dict, list)):
        data = json.dumps(value, separators=(",", ":")).encode()
        pairs.append((b"content-type", JSON_TYPE.encode()))
    elif isinstance(value, str):
        data = value.encode()
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise InvalidArgument(
            f"a record's value is bytes, str or a dict, got {type(value).__name__}"
        )
    k = key.encode() if isinstance(key, str) else key
    return (k, pairs, data, 0)


def _decode(t: tuple) -> QueueRecord:
    bucket, offset, key, headers, value, ts = t
    hs = [(n.decode(errors="replace"), v.decode(errors="replace")) for n, v in headers]
    rec = QueueRecord(bucket, offset, key, hs, value, ts)
    if rec.header("content-type") == JSON_TYPE:
        rec.value = json.loads(value)
    return rec


def _record_args(item: Any) -> tuple:
    """A put_batch item: a value, or (value, key), or (value, key, headers)."""
    if isinstance(item, tuple):
        if not 1 <= len(item) <= 3:
            raise InvalidArgument("a record is value, (value, key) or (value, key, headers)")
        return _encode(*item, *(None,) * (3 - len(item)))
    return _encode(item, None, None)


class QueueWriter:
    """Appends to one topic (:meth:`Queue.writer`)."""

    def __init__(self, handle: "_packice.QueueWriter") -> None:
        self._w = handle

    @property
    def buckets(self) -> int:
        return self._w.buckets

    def put(
        self, value: Value, key: Union[bytes, str, None] = None, headers: Headers = None
    ) -> Tuple[int, int]:
        """Appends one record; returns its ``(bucket, offset)`` once it is stored (with fsync
        ``always``, on the disk)."""
        return self._w.put(_encode(value, key, headers))

    def put_batch(self, records: Iterable[Any]) -> List[Tuple[int, int]]:
        """Appends records — each a value, ``(value, key)`` or ``(value, key, headers)`` — one
        append per bucket; returns each one's ``(bucket, offset)`` in order."""
        return self._w.put_batch([_record_args(r) for r in records])

    async def aput(self, value: Value, key: Union[bytes, str, None] = None,
                   headers: Headers = None) -> Tuple[int, int]:
        return await asyncio.to_thread(self.put, value, key, headers)

    async def aput_batch(self, records: Iterable[Any]) -> List[Tuple[int, int]]:
        records = list(records)
        return await asyncio.to_thread(self.put_batch, records)


class QueueReader:
    """Reads one topic for a consumer group from its committed positions (:meth:`Queue.reader`)."""

    def __init__(self, handle: "_packice.QueueReader") -> None:
        self._r = handle

    def get(self, limit: int = 100, timeout: float = 0.0) -> List[QueueRecord]:
        """Up to ``limit`` next records, waiting up to ``timeout`` seconds (at most 30 on the
        node) when there are none; an empty list when none came. Advances this reader, not the
        group: :meth:`commit` does."""
        if limit < 0:
            raise InvalidArgument(f"a negative limit: {limit}")
        if timeout < 0:
            raise InvalidArgument(f"a negative timeout: {timeout}")
        return [_decode(t) for t in self._r.get(limit, int(timeout * 1000))]

    def commit(self) -> None:
        """Commits every bucket's position durably: the group resumes after what get returned."""
        self._r.commit()

    @property
    def positions(self) -> List[Tuple[int, int]]:
        """``(bucket, next offset)`` of each bucket."""
        return self._r.positions

    async def aget(self, limit: int = 100, timeout: float = 0.0) -> List[QueueRecord]:
        return await asyncio.to_thread(self.get, limit, timeout)

    async def acommit(self) -> None:
        await asyncio.to_thread(self.commit)


class Queue:
    """A handle on one topic of the node's queue; making one sends nothing."""

    def __init__(self, client: "Client", topic: str) -> None:
        self._client = client
        self.topic = topic

    def _q(self) -> "_packice.QueueClient":
        return self._client._queue_client()

    def create(
        self,
        buckets: int = 1,
        fsync: str = "always",
        fsync_interval: float = 0.0,
        segment_bytes: int = 0,
        retention_bytes: int = 0,
        retention_age: float = 0.0,
        storage: str = "log",
    ) -> None:
        """Creates the topic: ``buckets`` (1..1024), ``fsync`` (``always``, ``interval``,
        ``never``), ``fsync_interval`` and ``retention_age`` in seconds, sizes in bytes (0: the
        default segment size of 64 MiB; no retention bound), ``storage`` (``log``, or
        ``tiered``: full segments sealed as objects into the node's object store)."""
        if fsync not in _FSYNC:
            raise InvalidArgument(f"fsync is always, interval or never, not {fsync!r}")
        self._q().create_topic(self.topic, buckets, _FSYNC[fsync], int(fsync_interval * 1000),
                               segment_bytes, retention_bytes, int(retention_age * 1000),
                               storage)

    def delete(self) -> None:
        """Deletes the topic, its records and its groups' positions."""
        self._q().delete_topic(self.topic)

    def stat(self) -> Dict[str, Any]:
        """``{"buckets": [dict per bucket: bucket, start_offset, end_offset, bytes, records_in,
        bytes_in, records_out, bytes_out], "groups": {group: {bucket: committed offset}},
        "lag": {group: records past its positions}}``."""
        buckets, groups = self._q().stat(self.topic)
        out_groups: Dict[str, Dict[int, int]] = {}
        for g, b, o in groups:
            out_groups.setdefault(g, {})[b] = o
        lag = {
            g: sum(max(0, buckets[b]["end_offset"] - o) for b, o in pos.items() if b < len(buckets))
            for g, pos in out_groups.items()
        }
        return {"buckets": buckets, "groups": out_groups, "lag": lag}

    def set_schema(self, schema: Dict[str, Any]) -> int:
        """Adds a schema version and returns its number (docs/queue.md, "Schemas"):
        ``{"fields": [{"name": "user", "type": "int", "required": True},
        {"name": "tag", "type": "string", "default": "none"}]}``. A new version keeps every
        field and may add optional ones; records must then be dicts that fit it, and older
        ones read back with the new fields' defaults."""
        return self._q().set_schema(self.topic, json.dumps(schema))

    def schemas(self) -> List[Dict[str, Any]]:
        """Every schema version, oldest first (each with its ``version``)."""
        return [json.loads(s) for s in self._q().schemas(self.topic)]

    def writer(self) -> QueueWriter:
        return QueueWriter(self._q().writer(self.topic))

    def reader(self, group: str = "default") -> QueueReader:
        return QueueReader(self._q().reader(self.topic, group))

    def read(self, bucket: int, offset: int, limit: int = 100,
             timeout: float = 0.0) -> List[QueueRecord]:
        """Records of one bucket from ``offset`` (the seed's ``get(offset, limit)``), no group."""
        if limit < 0:
            raise InvalidArgument(f"a negative limit: {limit}")
        return [_decode(t) for t in
                self._q().read(self.topic, [(bucket, offset)], limit, int(timeout * 1000))]

    def export(self, path: str) -> None:
        """Writes the topic to ``path`` (docs/queue.md, "Export format")."""
        self._q().export_topic(self.topic, str(path))

    def import_from(self, path: str) -> None:
        """Creates this topic from an export file; all or nothing."""
        self._q().import_topic(self.topic, str(path))

    def __repr__(self) -> str:
        return f"<packice.Queue {self.topic}>"
