"""Packice from Python: objects in a node's shared memory, read and written without copies.

::

    import packice

    client = packice.connect("uds:///run/packice.sock")    # or connect(peer), or "http://..."
    with client.create(meta={"ttl": 60}) as obj:
        obj.write(b"Hello Packice")
        obj.seal()
    with client.get(obj.id) as obj:
        print(obj.buffer.tobytes())                          # b'Hello Packice'

- :func:`connect` reaches a node by URL (``uds://`` Unix socket: zero-copy; ``http(s)://``:
  the bytes are copied) or an in-process peer (:class:`MemoryPeer`, :class:`SharedFSPeer`:
  the direct transport, no serialisation).
- :meth:`Client.create` returns an :class:`ObjectWriter`. With ``size=N`` its bytes are the
  node's shared memory: ``obj.buffer`` is a writable ``memoryview`` (fill it with
  ``obj.buffer[0:5] = b"hello"``, ``numpy.frombuffer(obj.buffer, ...)``, ``obj.write()``...).
  Without a size, ``obj.write()`` collects the bytes in this process and ``seal()`` sends them.
- :meth:`Client.get` returns an :class:`ObjectReader`; ``obj.buffer`` is a read-only
  ``memoryview`` over the mapped bytes (no copy), and ``numpy.frombuffer(obj.buffer, ...)``
  shares that memory too.
- Key-based shortcuts: :meth:`Client.put`, :meth:`Client.get_bytes`; and :meth:`Client.stat`,
  :meth:`Client.list`, :meth:`Client.delete`.
- Cache groups (docs/cache_groups.md): :class:`Group` is a read-through cache in this process
  whose loader is a Python callable; :meth:`Client.group` reaches a node's groups over
  ``grpc(s)://`` or ``http(s)://``.
- Content-addressed storage (docs/cas.md): :attr:`Client.cas` puts blobs by digest and gets
  them (or ranges of them) as memoryviews, mapped with no copy over ``uds://``.
- The namespaced KV (docs/kv.md): :meth:`Client.kv` is a :class:`Kv` handle on one namespace
  (gets, puts with compare-and-swap and TTLs, scans, atomic batches, watches), over the C++ KV
  client on the client's ``uds://`` or ``grpc(s)://`` URL (:mod:`packice.kv`).
- The queue (docs/queue.md): :meth:`Client.queue` is a :class:`Queue` handle on one topic, with
  writers, readers of consumer groups and asyncio forms (:mod:`packice.queue`).
- Failures raise :class:`PackiceError` subclasses, one per status code (:mod:`packice.errors`).
- Blocking calls release the GIL.

Metadata and TTLs: ``meta`` is a dict of string metadata stored with the object, except its
``"ttl"`` entry, which is the object's TTL in seconds (as the seed writes it); ``ttl=`` says the
same as a keyword. A TTL is a number of seconds, a ``datetime.timedelta`` or a string such as
``"500ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``; 0 means the object never expires, and no
TTL at all takes the node's default. Metadata values must be strings; ints, floats and bools are
stored as their ``str()``.
"""

from __future__ import annotations

import datetime as _dt
import os as _os
import re as _re
import threading as _threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from . import _packice, errors
from .errors import (
    Aborted,
    AlreadyExists,
    DataLoss,
    DigestMismatch,
    Internal,
    InvalidArgument,
    LeaseExpired,
    NotFound,
    OutOfCapacity,
    OutOfRange,
    PackiceError,
    PermissionDenied,
    ProtocolError,
    Timeout,
    Unavailable,
    Unimplemented,
    WrongState,
    error_class,
)

__all__ = [
    "connect",
    "default_url",
    "Client",
    "ObjectWriter",
    "ObjectReader",
    "ObjectInfo",
    "Group",
    "RemoteGroup",
    "Cas",
    "Kv",
    "KvItem",
    "KvEvent",
    "KvWatch",
    "Queue",
    "QueueRecord",
    "QueueWriter",
    "QueueReader",
    "Peer",
    "MemoryPeer",
    "SharedFSPeer",
    *errors.__all__,  # the exception classes, one per status code
    "error_class",
]

__version__ = "0.1.0"

Buffer = Union[bytes, bytearray, memoryview, Any]  # anything with the buffer protocol
TTL = Union[int, float, str, _dt.timedelta]
Size = Union[int, str]
Value = Union[bytes, bytearray, memoryview, str]  # a cache group's value (str: its UTF-8)
Loader = Callable[[str], Optional[Value]]
BlobRange = Union[Tuple[int, Optional[int]], slice, None]  # (start, length), a slice, or all

_LIST_PAGE = 1000

# --- argument conversion ---------------------------------------------------------------------

_DURATION = _re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}
_SIZE = _re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$", _re.IGNORECASE)
_SIZE_UNIT = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _ttl_ms(ttl: Optional[TTL], what: str = "ttl") -> Optional[int]:
    """A TTL as whole milliseconds (None stays None: the node's default)."""
    if ttl is None:
        return None
    if isinstance(ttl, bool):
        raise InvalidArgument(f"{what}: expected seconds, a timedelta or a string like '30s'")
    if isinstance(ttl, _dt.timedelta):
        ms = ttl.total_seconds() * 1000
    elif isinstance(ttl, (int, float)):
        ms = float(ttl) * 1000
    elif isinstance(ttl, str):
        m = _DURATION.match(ttl)
        if not m:
            raise InvalidArgument(
                f"{what}: expected a duration like '500ms', '30s', '5m', '2h', '1d', got {ttl!r}"
            )
        ms = float(m.group(1)) * _DURATION_UNIT_MS[m.group(2)]
    else:
        raise InvalidArgument(
            f"{what}: expected seconds, a timedelta or a string like '30s', "
            f"got {type(ttl).__name__}"
        )
    if not 0 <= ms < 2**62:  # also NaN and infinity
        raise InvalidArgument(f"{what}: must be a finite, non-negative duration, got {ttl!r}")
    return int(round(ms))


def _size(size: Size, what: str = "size") -> int:
    """A byte count from an int or a string like '64M' (K, M, G, T)."""
    if isinstance(size, bool):
        raise InvalidArgument(f"{what}: expected an integer of bytes")
    if isinstance(size, int):
        if size < 0:
            raise InvalidArgument(f"{what}: must not be negative, got {size}")
        return size
    if isinstance(size, str):
        m = _SIZE.match(size)
        if m:
            return int(m.group(1)) * _SIZE_UNIT[m.group(2).upper()]
        raise InvalidArgument(f"{what}: expected a size like '512M' (K, M, G, T), got {size!r}")
    raise InvalidArgument(f"{what}: expected an integer of bytes, got {type(size).__name__}")


def _split_meta(
    meta: Optional[Mapping[str, Any]], ttl: Optional[TTL]
) -> Tuple[Dict[str, str], Optional[int]]:
    """(string metadata, TTL in ms) from a create's ``meta`` and ``ttl`` arguments."""
    strings: Dict[str, str] = {}
    if meta:
        for k, v in meta.items():
            if not isinstance(k, str):
                raise InvalidArgument(f"meta: keys must be strings, got {k!r}")
            if k == "ttl":
                if ttl is not None:
                    raise InvalidArgument("give the TTL once: meta['ttl'] or ttl=, not both")
                ttl = v
                continue
            if isinstance(v, str):
                strings[k] = v
            elif isinstance(v, (int, float, bool)):
                strings[k] = str(v)
            else:
                raise InvalidArgument(
                    f"meta[{k!r}]: values must be strings (or numbers), got {type(v).__name__}"
                )
    return strings, _ttl_ms(ttl)


# --- object information ----------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    """What the node says about one object.

    Attributes:
        key: the object's key (its id; generated by the node when a create named none).
        version: unique per object within a node; a rebind of the key gets a new one.
        size: bytes of content.
        state: ``"sealed"`` or ``"creating"``.
        meta: the string metadata.
        ttl: the object's TTL in seconds, or None when it lives until deleted.
        created: creation time, seconds since the epoch.
        expires: expiry time, seconds since the epoch, or None.
        tier: which store holds it: ``"memory"``, ``"disk"``, ``"sharedfs"``, ...
    """

    key: str
    version: int
    size: int
    state: str
    meta: Dict[str, str] = field(default_factory=dict)
    ttl: Optional[float] = None
    created: float = 0.0
    expires: Optional[float] = None
    tier: str = ""

    @property
    def id(self) -> str:
        """The key (the seed calls it the object's id)."""
        return self.key

    @classmethod
    def _from_raw(cls, raw: tuple) -> "ObjectInfo":
        key, version, size, state, meta, ttl_ms, created_ms, expires_ms, tier = raw
        return cls(
            key=key,
            version=version,
            size=size,
            state=state,
            meta=dict(meta),
            ttl=ttl_ms / 1000 if ttl_ms else None,
            created=created_ms / 1000,
            expires=expires_ms / 1000 if expires_ms else None,
            tier=tier,
        )


# --- handles ---------------------------------------------------------------------------------


class ObjectWriter:
    """A new object under a create lease, until :meth:`seal` (or :meth:`abort`).

    Use it as a context manager: leaving the ``with`` block without a seal (or with an
    exception) discards the object, as does dropping the writer.

    With a size given to :meth:`Client.create`, the bytes are the node's memory (zero at
    first): write them through :attr:`buffer` or :meth:`write`. Without one, :meth:`write`
    appends to a buffer in this process and :meth:`seal` sends it (one copy; one round trip for
    small objects).
    """

    def __init__(
        self,
        client: "Client",
        handle: Optional["_packice.Writer"],
        key: str,
        meta: Dict[str, str],
        ttl_ms: Optional[int],
        exclusive: bool,
    ) -> None:
        self._client = client
        self._w = handle
        self._key = key
        self._meta = meta
        self._ttl_ms = ttl_ms
        self._exclusive = exclusive
        self._pending: Optional[bytearray] = None if handle is not None else bytearray()
        self._pos = 0
        self._info: Optional[ObjectInfo] = None
        self._done = False

    # Identity.

    @property
    def id(self) -> Optional[str]:
        """The object's key. A key the node generates is known at once for a sized create, and
        after :meth:`seal` for an unsized one (None before)."""
        if self._info is not None:
            return self._info.key
        if self._w is not None:
            return self._w.key
        return self._key or None

    key = id

    @property
    def size(self) -> int:
        """Bytes allocated (sized create) or written so far (unsized create); after the seal,
        the object's size."""
        if self._info is not None:
            return self._info.size
        if self._w is not None:
            return self._w.size
        return len(self._pending or b"")

    @property
    def info(self) -> Optional[ObjectInfo]:
        """What the node said at :meth:`seal`; None before."""
        return self._info

    @property
    def sealed(self) -> bool:
        return self._info is not None

    # Bytes.

    @property
    def buffer(self) -> memoryview:
        """A writable memoryview over the object's bytes in the node's memory (no copy).

        Views (slices, numpy arrays made from it) must be gone before :meth:`seal`, which
        otherwise raises BufferError: after the seal the bytes are immutable and unmapped.
        Needs a sized create.
        """
        self._live()
        if self._w is None:
            raise WrongState(
                "this object was created without a size: its bytes are collected by write() and "
                "sent at seal(); create(size=N) to write straight into the node's memory"
            )
        return self._w.buffer()

    def write(self, data: Buffer, offset: Optional[int] = None) -> int:
        """Writes ``data`` (any bytes-like object) at ``offset`` (default: where the last write
        ended, like a file) and returns the bytes written. Large writes release the GIL."""
        self._live()
        if self._w is None:
            assert self._pending is not None
            if offset is None or offset == len(self._pending):
                self._pending += data
                return memoryview(data).nbytes
            raise InvalidArgument("an object created without a size is written in order")
        pos = self._pos if offset is None else offset
        if pos < 0:
            raise InvalidArgument(f"offset must not be negative, got {pos}")
        n = self._w.write(data, pos)
        self._pos = pos + n
        return n

    def tell(self) -> int:
        """Where the next :meth:`write` without an offset goes."""
        return len(self._pending) if self._pending is not None else self._pos

    # Ending.

    def seal(self, size: Optional[int] = None) -> ObjectInfo:
        """Makes the object immutable and readable under its key; returns its information.

        ``size`` (at most the allocated size) truncates the object; by default it keeps every
        allocated byte (sized create) or every byte written (unsized create).
        Errors: BufferError (views of the bytes still exist), LeaseExpired, AlreadyExists
        (exclusive create lost a race), WrongState (already sealed or aborted),
        InvalidArgument (size too large).
        """
        self._live()
        if self._w is None:
            assert self._pending is not None
            data = self._pending if size is None else memoryview(self._pending)[:size]
            if size is not None and size > len(self._pending):
                raise InvalidArgument(
                    f"seal size {size} is above the {len(self._pending)} bytes written"
                )
            raw = self._client._c.put(self._key, data, self._meta, self._ttl_ms, self._exclusive)
            self._pending = None
        else:
            raw = self._w.seal(size)
        self._info = ObjectInfo._from_raw(raw)
        self._done = True
        return self._info

    def abort(self) -> None:
        """Discards the object. Idempotent; nothing after a seal."""
        if self._done:
            return
        self._done = True
        self._pending = None
        if self._w is not None:
            self._w.abort()

    def _live(self) -> None:
        if self._done:
            what = "sealed" if self._info is not None else "aborted"
            raise WrongState(f"object {self.id or '(unnamed)'} was already {what}")

    def __enter__(self) -> "ObjectWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort()  # a no-op after seal(); otherwise nothing is published

    def __repr__(self) -> str:
        state = "sealed" if self.sealed else ("aborted" if self._done else "creating")
        return f"<packice.ObjectWriter {self.id!r} size={self.size} {state}>"


class ObjectReader:
    """A sealed object under a read lease.

    :attr:`buffer` is a read-only memoryview over the node's memory: no copy. Use it as a
    context manager, or call :meth:`release`; views that outlive the handle keep the object
    (and its lease, renewed in the background) until the last of them is gone.
    """

    def __init__(self, handle: "_packice.Reader") -> None:
        self._r = handle
        self._info = ObjectInfo._from_raw(handle.info)

    @property
    def id(self) -> str:
        """The object's key."""
        return self._info.key

    key = id

    @property
    def info(self) -> ObjectInfo:
        return self._info

    @property
    def size(self) -> int:
        return self._info.size

    @property
    def meta(self) -> Dict[str, str]:
        return self._info.meta

    @property
    def ttl(self) -> Optional[float]:
        return self._info.ttl

    @property
    def buffer(self) -> memoryview:
        """A read-only memoryview over the object's bytes, mapped from the node (no copy).
        ``numpy.frombuffer(obj.buffer, dtype)`` shares the same memory."""
        return self._r.buffer()

    def read(self) -> bytes:
        """A copy of the bytes."""
        return self._r.buffer().tobytes()

    def __len__(self) -> int:
        return self._info.size

    @property
    def released(self) -> bool:
        return not self._r.open

    def release(self) -> None:
        """Ends this handle (idempotent). The lease ends now, or when the last view of the bytes
        is gone."""
        self._r.release()

    def __enter__(self) -> "ObjectReader":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self.released else "open"
        return f"<packice.ObjectReader {self.id!r} size={self.size} {state}>"


# --- the client ------------------------------------------------------------------------------


class Client:
    """A connection to a node (or an in-process peer). Safe to share between threads; calls
    release the GIL while they wait. Use :func:`connect` to make one; ``with`` closes it."""

    def __init__(
        self,
        handle: "_packice.Client",
        target: str,
        *,
        url: Optional[str] = None,
        token: str = "",
        ca_file: str = "",
    ) -> None:
        self._c = handle
        self._target = target
        self._url = url  # None: an in-process peer
        self._token = token
        self._ca_file = ca_file
        self._groups: Optional["_packice.GroupClient"] = None
        self._groups_lock = _threading.Lock()
        self._cas: Optional["Cas"] = None
        self._kv: Optional["_packice.KvClient"] = None
        self._queue: Optional["_packice.QueueClient"] = None

    def create(
        self,
        key: Optional[str] = None,
        size: Optional[Size] = None,
        *,
        meta: Optional[Mapping[str, Any]] = None,
        ttl: Optional[TTL] = None,
        exclusive: bool = False,
    ) -> ObjectWriter:
        """Starts a new object; seal it to publish it.

        Args:
            key: its key; None (or "") lets the node generate an id.
            size: bytes to allocate in the node (zero-copy writes through ``obj.buffer``); None
                collects ``obj.write()`` data here and sends it at ``seal()``.
            meta: string metadata; a ``"ttl"`` entry is the object TTL (see the module doc).
            ttl: the object's TTL (seconds, timedelta or "30s"); None: the node's default.
            exclusive: fail with AlreadyExists when the key is bound or being created, instead
                of rebinding it.
        """
        strings, ttl_ms = _split_meta(meta, ttl)
        k = key or ""
        if size is None:
            return ObjectWriter(self, None, k, strings, ttl_ms, exclusive)
        handle = self._c.create(k, _size(size), strings, ttl_ms, exclusive)
        return ObjectWriter(self, handle, handle.key, strings, ttl_ms, exclusive)

    def get(self, key: str) -> ObjectReader:
        """A read lease on the sealed object under ``key``; its bytes are not copied.
        Errors: NotFound."""
        return ObjectReader(self._c.get(key))

    def put(
        self,
        key: Optional[str],
        data: Buffer,
        *,
        ttl: Optional[TTL] = None,
        meta: Optional[Mapping[str, Any]] = None,
        exclusive: bool = False,
    ) -> ObjectInfo:
        """Creates, writes and seals an object from any bytes-like ``data`` (one round trip for
        small objects). ``key`` None generates an id. Returns its information."""
        strings, ttl_ms = _split_meta(meta, ttl)
        return ObjectInfo._from_raw(self._c.put(key or "", data, strings, ttl_ms, exclusive))

    def get_bytes(self, key: str) -> bytes:
        """A copy of the object's bytes. Errors: NotFound."""
        return self._c.get_bytes(key)

    def stat(self, key: str) -> ObjectInfo:
        """Information about the sealed object under ``key``. Errors: NotFound."""
        return ObjectInfo._from_raw(self._c.stat(key))

    def list(
        self, prefix: str = "", *, start_after: str = "", limit: Optional[int] = None
    ) -> List[ObjectInfo]:
        """Sealed objects whose keys start with ``prefix``, in key order (every one, or the
        first ``limit``)."""
        return list(self.iter(prefix, start_after=start_after, limit=limit))

    def iter(
        self, prefix: str = "", *, start_after: str = "", limit: Optional[int] = None
    ) -> Iterator[ObjectInfo]:
        """Like :meth:`list`, one page at a time from the node."""
        left = limit
        after = start_after
        while left is None or left > 0:
            page = _LIST_PAGE if left is None else min(left, _LIST_PAGE)
            raws, truncated = self._c.list(prefix, after, page)
            for raw in raws:
                yield ObjectInfo._from_raw(raw)
            if left is not None:
                left -= len(raws)
            if not truncated or not raws:
                return
            after = raws[-1][0]

    def delete(self, key: str) -> None:
        """Unbinds ``key``; readers holding the object keep their view. Errors: NotFound."""
        self._c.delete(key)

    def group(self, name: str) -> "RemoteGroup":
        """The node's cache group ``name`` (docs/cache_groups.md), over the URL this client was
        connected with: ``grpc://`` / ``grpcs://`` (packiced ``--grpc``) or ``http://`` /
        ``https://`` (``--http``), with the same token and CAs. Groups are not served on the
        Unix socket: over ``uds://`` this raises InvalidArgument naming the URLs that work.
        Nothing is sent until the first call; an unknown group is NotFound then."""
        if not isinstance(name, str):
            raise InvalidArgument(f"a group name is a str, got {type(name).__name__}")
        self._group_client()  # fail now on a URL that serves no groups
        return RemoteGroup(self, name)

    def groups(self) -> List[Dict[str, Any]]:
        """The node's cache groups: one dict per group (``name``, ``capacity_bytes``,
        ``policy``, ``ttl_ms``, ``origin``, ``load_timeout_ms``, ``max_value_bytes``)."""
        return self._group_client().list()

    def _group_client(self) -> "_packice.GroupClient":
        with self._groups_lock:
            if self.closed:
                raise WrongState("the client was closed")
            if self._groups is None:
                url = self._url
                if url is None:
                    raise InvalidArgument(
                        f"{self._target} is an in-process peer, which serves no cache groups: use "
                        "packice.Group for an in-process group, or connect to a node's grpc:// "
                        "or http:// URL"
                    )
                scheme = url.split("://", 1)[0].lower() if "://" in url else ""
                if scheme not in ("grpc", "grpcs", "http", "https"):
                    raise InvalidArgument(
                        f"cache groups are served over gRPC and HTTP, not at {url}: connect to the "
                        "node's grpc://HOST:PORT (packiced --grpc) or http://HOST:PORT (--http) "
                        "URL (or grpcs:// / https://)"
                    )
                self._groups = _packice.open_groups(url, self._token, self._ca_file)
            return self._groups

    @property
    def cas(self) -> "Cas":
        """The node's content-addressed store (docs/cas.md): over ``uds://`` and ``grpc://``
        the object API's ``cas/`` keys on this connection (gets mapped with no copy over the
        socket), over ``http(s)://`` the node's ``/v1/cas`` routes."""
        with self._groups_lock:
            if self.closed:
                raise WrongState("the client was closed")
            if self._cas is None:
                url = self._url
                scheme = url.split("://", 1)[0].lower() if url and "://" in url else ""
                if scheme in ("http", "https"):
                    handle = _packice.open_cas(url, self._token, self._ca_file)
                else:
                    handle = self._c.cas()
                self._cas = Cas(handle, self._target)
            return self._cas

    def kv(self, path: str) -> "Kv":
        """The KV namespace ``path`` of the node (docs/kv.md), e.g. ``"/team/ns"``: a
        :class:`Kv` handle (:mod:`packice.kv`). Nothing is sent until the first call; a bad
        path or a namespace that does not exist is InvalidArgument or NotFound then (create
        one with :meth:`Kv.create`).

        The KV is the C++ KV client (``ConnectKv``) over the URL this client was connected
        with, ``uds://`` (or a bare socket path) or ``grpc(s)://`` with the same token and
        CAs; one connection per client, made at the first call and shared by all its
        :class:`Kv` handles and watches. An ``http(s)://`` client, or an in-process peer,
        raises InvalidArgument now."""
        if not isinstance(path, str):
            raise InvalidArgument(f"a KV namespace path is a str, got {type(path).__name__}")
        self._kv_url()
        return Kv(self, path)

    def kv_namespaces(self, prefix: str = "") -> List[Dict[str, Any]]:
        """The node's KV namespaces whose paths start with ``prefix``, sorted by path: one dict
        each, ``path``, ``engine``, ``write_mode``, ``fsync``, ``fsync_interval`` and
        ``default_ttl`` (seconds), ``revision`` (its latest) and ``keys`` (live keys, expired
        ones not yet reaped included)."""
        return self._kv_client().list_namespaces(prefix)

    def _kv_url(self) -> str:
        url = self._url
        if url is None:
            raise InvalidArgument(
                f"{self._target} is an in-process peer, which serves no KV: connect to a node's "
                "uds:// or grpc:// URL"
            )
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme in ("http", "https"):
            raise InvalidArgument(
                f"the KV client needs uds:// or grpc://, not {url}: connect to the node's "
                "uds:///path/to/socket or grpc://HOST:PORT (packiced --grpc) URL (or grpcs://)"
            )
        return url

    def _kv_client(self) -> "_packice.KvClient":
        with self._groups_lock:
            if self.closed:
                raise WrongState("the client was closed")
            if self._kv is None:
                self._kv = _packice.connect_kv(self._kv_url(), self._token, self._ca_file)
            return self._kv

    def queue(self, topic: str) -> "Queue":
        """The topic ``topic`` of the node's queue (docs/queue.md): a :class:`Queue` handle
        (:mod:`packice.queue`) with :meth:`Queue.writer` and :meth:`Queue.reader`. Nothing is
        sent until the first call. The queue travels over the node's Unix socket only: a client
        of another URL raises InvalidArgument now."""
        if not isinstance(topic, str):
            raise InvalidArgument(f"a topic name is a str, got {type(topic).__name__}")
        self._queue_url()
        return Queue(self, topic)

    def queue_topics(self) -> List[Dict[str, Any]]:
        """The node's topics: one dict each, ``name``, ``buckets``, ``fsync``,
        ``fsync_interval`` and ``retention_age`` (seconds), ``segment_bytes``,
        ``retention_bytes`` and ``storage``."""
        names = {0: "always", 1: "interval", 2: "never"}
        return [
            {"name": n, "buckets": b, "fsync": names.get(f, str(f)), "fsync_interval": fi / 1000,
             "segment_bytes": sb, "retention_bytes": rb, "retention_age": ra / 1000,
             "storage": st}
            for n, b, f, fi, sb, rb, ra, st in self._queue_client().topics()
        ]

    def _queue_url(self) -> str:
        url = self._url
        scheme = url.split("://", 1)[0].lower() if url and "://" in url else ""
        if url is None or scheme not in ("", "uds"):
            raise InvalidArgument(
                f"the queue is served over the node's Unix socket, not {url or self._target}: "
                "connect to uds:///path/to/socket"
            )
        return url

    def _queue_client(self) -> "_packice.QueueClient":
        with self._groups_lock:
            if self.closed:
                raise WrongState("the client was closed")
            if self._queue is None:
                self._queue = _packice.connect_queue(self._queue_url())
            return self._queue

    def close(self) -> None:
        """Drops the connection once no handle uses it (handles keep it until they end)."""
        self._c.close()
        with self._groups_lock:
            self._groups = None
            self._cas = None
            self._kv = None
            self._queue = None

    @property
    def closed(self) -> bool:
        return self._c.closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<packice.Client {self._target}{' closed' if self.closed else ''}>"


# --- content-addressed storage --------------------------------------------------------------


def _blob_range(range: BlobRange) -> Tuple[int, Optional[int]]:
    """(start, length or None) of a get's ``range``."""
    if range is None:
        return 0, None
    if isinstance(range, slice):
        if range.step not in (None, 1):
            raise InvalidArgument("a blob range is contiguous: a slice's step must be 1")
        start = 0 if range.start is None else range.start
        if not isinstance(start, int) or start < 0:
            raise InvalidArgument(f"a range's start is an int >= 0, got {range.start!r}")
        if range.stop is None:
            return start, None
        if not isinstance(range.stop, int) or range.stop < start:
            raise InvalidArgument(f"a range's stop is an int >= its start, got {range.stop!r}")
        return start, range.stop - start
    if isinstance(range, tuple) and len(range) == 2:
        start, length = range
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InvalidArgument(f"a range's start is an int >= 0, got {start!r}")
        if length is not None and (
            isinstance(length, bool) or not isinstance(length, int) or length < 0
        ):
            raise InvalidArgument(f"a range's length is an int >= 0 or None, got {length!r}")
        return start, length
    raise InvalidArgument(
        f"range is (start, length), (start, None), a slice or None, got {type(range).__name__}"
    )


class Cas:
    """A node's content-addressed store, from :attr:`Client.cas` (docs/cas.md): blobs named by
    the digest of their content, ``"blake3:<hex>/<size>"`` or ``"sha256:<hex>/<size>"``.

    ::

        digest = client.cas.put(b"some bytes")              # 'blake3:.../10'
        digest = client.cas.put("model.bin")                 # a file, not read into memory
        view = client.cas.get(digest)                        # read-only memoryview
        head = client.cas.get(digest, range=(0, 1024))       # or range=slice(0, 1024)
        client.cas.missing([digest, other])                  # [other] if the node lacks it
        client.cas.stat(digest)                              # its size

    Over ``uds://`` a put hashes here, sends nothing when the node has the blob, and otherwise
    writes the bytes straight into the node's file for it; a get maps that file read-only: the
    memoryview is the node's bytes, no copy (blobs of 64 KiB or less come inline). A view keeps
    the blob's read lease until the last view of it (slices and numpy arrays included) is gone.
    Over ``http(s)://`` the bytes are copied. Calls release the GIL; safe to share between
    threads.

    Errors: DigestMismatch (content that is not its digest: nothing is stored), OutOfRange (a
    range past the end), NotFound (no such blob), InvalidArgument (a digest string that does
    not parse, a bad range or algorithm).
    """

    def __init__(self, handle: "_packice.CasClient", target: str) -> None:
        self._h = handle
        self._target = target

    def put(
        self, data: Union[Buffer, str, "_os.PathLike[str]"], algorithm: str = "blake3"
    ) -> str:
        """Stores a blob and returns its digest: ``data`` bytes-like (its bytes), or a ``str`` or
        path-like (the file there, hashed and sent without reading it whole into memory).
        ``algorithm``: ``"blake3"`` or ``"sha256"`` (Bazel's, REAPI's)."""
        if isinstance(data, str) or isinstance(data, _os.PathLike):
            return self._h.put_file(_os.fspath(data), algorithm)
        return self._h.put_bytes(data, algorithm)

    def store(self, digest: str, data: Buffer) -> None:
        """Stores ``data`` under ``digest``. Errors: DigestMismatch when it is not its content."""
        self._h.store(digest, data)

    def get(self, digest: str, range: BlobRange = None) -> memoryview:
        """The blob's bytes, or ``range`` of them: ``(start, length)``, ``(start, None)`` (to the
        end) or a ``slice`` (``slice(10, 20)``: bytes 10 to 19; a stop past the end is
        OutOfRange, not clamped). A read-only memoryview (see the class doc)."""
        start, length = _blob_range(range)
        return self._h.get(digest, start, length)

    def missing(self, digests: Iterable[str]) -> List[str]:
        """The digests of ``digests`` the node does not hold, in their order (canonical text)."""
        return self._h.missing(list(digests))

    def stat(self, digest: str) -> int:
        """The blob's size. Errors: NotFound."""
        return self._h.stat(digest)

    def __contains__(self, digest: str) -> bool:
        try:
            self.stat(digest)
            return True
        except NotFound:
            return False

    def __repr__(self) -> str:
        return f"<packice.Cas at {self._target}>"


# --- cache groups ----------------------------------------------------------------------------


def _value(value: Value) -> Union[bytes, bytearray, memoryview]:
    """A group value's bytes (a str as UTF-8)."""
    if isinstance(value, str):
        return value.encode()
    return value


class Group:
    """An in-process cache group (docs/cache_groups.md): a read-through cache of ``capacity``
    bytes whose misses call ``loader(key)``.

    ::

        def load_user(key: str) -> bytes:
            return db.fetch_user(key)           # runs once per missing key

        users = packice.Group("users", "64M", load_user, ttl="10m")
        users.get("42")                         # a miss: load_user("42"); then hits

    The loader returns the value as bytes, str (stored as UTF-8) or another bytes-like object.
    It runs on a thread of the group's own, holding the GIL, and concurrent misses of one key
    call it once (singleflight): every caller waiting for that key gets its value or its error.
    Errors are never cached; the next :meth:`get` calls the loader again. What a loader's
    answer becomes:

    - ``None``, a ``KeyError`` (``packice.NotFound`` is one): NotFound;
    - another :class:`PackiceError`: that error (its code and message);
    - any other exception: Unavailable, with the exception's type and message (as a node's
      HTTP origin failing is ``unavailable``);
    - something other than bytes, str or bytes-like: Internal (a bug in the loader).

    A :meth:`get` waits at most ``load_timeout`` (then Timeout) with the GIL released; the load
    runs on, and its value still fills the cache. Dropping the group waits for loads still
    running. A loader may ``get`` other keys of its group; a loader that refers to its own
    group (directly or through an object holding it) keeps the group alive until the process
    ends.

    Args:
        name: 1 to 64 of ``A-Z a-z 0-9 _ . -`` (for messages and stats, as a node's groups).
        capacity: bytes of keys and values held (int or "64M").
        loader: ``loader(key: str) -> bytes | str | None``.
        policy: ``"lru2"`` (scan resistant: a key read once cannot push out keys read twice)
            or ``"lru"``.
        ttl: of loaded values and of :meth:`set` without a TTL; None or 0: values do not expire.
        load_timeout: how long a :meth:`get` waits for a load (seconds, timedelta, "10s");
            None: no bound.
        max_value: the largest value stored or loaded (larger ones are InvalidArgument).
    """

    def __init__(
        self,
        name: str,
        capacity: Size,
        loader: Loader,
        *,
        policy: str = "lru2",
        ttl: Optional[TTL] = None,
        load_timeout: Optional[TTL] = 10.0,
        max_value: Size = 1 << 20,
    ) -> None:
        if not isinstance(name, str):
            raise InvalidArgument(f"a group name is a str, got {type(name).__name__}")
        if not callable(loader):
            raise InvalidArgument(
                f"group {name!r}: the loader must be callable as loader(key) -> bytes, got "
                f"{type(loader).__name__}"
            )
        if not isinstance(policy, str):
            raise InvalidArgument('policy must be "lru2" or "lru"')
        timeout_ms = 0
        if load_timeout is not None:
            timeout_ms = _ttl_ms(load_timeout, "load_timeout") or 0
            if timeout_ms <= 0:
                raise InvalidArgument("load_timeout must be more than 0 (None: no bound)")
        self._g = _packice.Group(
            name,
            _size(capacity, "capacity"),
            loader,
            policy,
            _ttl_ms(ttl) or 0,
            timeout_ms,
            _size(max_value, "max_value"),
        )

    @property
    def name(self) -> str:
        return self._g.name

    def get(self, key: str) -> bytes:
        """The value of ``key``: from the cache, else from the loader (once for every caller
        waiting for it). Errors: the loader's (see the class doc), Timeout (load_timeout ran
        out), InvalidArgument (an empty or oversize key, an oversize value), Unavailable (64
        loads already running, or the loader failed)."""
        return self._g.get(key)

    def set(self, key: str, value: Value, ttl: Optional[TTL] = None) -> None:
        """Stores ``value`` (bytes-like, or str as UTF-8) under ``key`` for ``ttl`` (None: the
        group's ttl; 0: no expiry), replacing any value. Errors: InvalidArgument (empty or
        oversize key or value)."""
        self._g.set(key, _value(value), _ttl_ms(ttl))

    def delete(self, key: str) -> None:
        """Drops ``key`` from the cache (nothing happens if it is absent)."""
        self._g.delete(key)

    def stats(self) -> Dict[str, Union[int, float]]:
        """Counters since the group was made and what it holds now: ``gets``, ``hits``,
        ``misses``, ``loads`` (loader calls), ``load_errors``, ``load_timeouts``,
        ``evictions``, ``bytes``, ``items``, ``capacity_bytes``, ``load_seconds_sum``, ... (the
        names of a node's ``GET /v1/groups/NAME``)."""
        return self._g.stats()

    def __repr__(self) -> str:
        return f"<packice.Group {self.name!r}>"


class RemoteGroup:
    """A cache group of a node, from :meth:`Client.group`: the same calls as :class:`Group`,
    each one a round trip to the node (which loads a miss from the group's origin, or asks the
    key's owner in a cluster). Safe to share between threads; calls release the GIL."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def get(self, key: str) -> bytes:
        """The value of ``key``, from the node's cache or loaded there. Errors: NotFound (an
        unknown group, or the origin has no such key), Unavailable (the node or the origin
        cannot be reached), Timeout (the node's load timeout), InvalidArgument."""
        return self._client._group_client().get(self._name, key)

    def set(self, key: str, value: Value, ttl: Optional[TTL] = None) -> None:
        """Stores ``value`` under ``key`` on the node for ``ttl`` (None: the group's)."""
        self._client._group_client().set(self._name, key, _value(value), _ttl_ms(ttl))

    def delete(self, key: str) -> None:
        """Drops ``key`` from the group (nothing happens if it is absent)."""
        self._client._group_client().delete(self._name, key)

    def stats(self) -> Dict[str, Union[int, float]]:
        """The group's counters on the node, as :meth:`Group.stats`."""
        return self._client._group_client().stats(self._name)

    def __repr__(self) -> str:
        return f"<packice.RemoteGroup {self._name!r} at {self._client._target}>"


# --- in-process peers ------------------------------------------------------------------------


class Peer:
    """An in-process peer: ``packice.connect(peer)`` reaches it with the direct transport (no
    serialisation, no copies)."""

    _p: Any

    def stats(self) -> Dict[str, int]:
        """Objects, leases, bytes used and capacity, hits, misses, evictions."""
        return self._p.stats()

    @property
    def tier(self) -> str:
        """Where it keeps objects (``ObjectInfo.tier``)."""
        return self._p.tier


class MemoryPeer(Peer):
    """Objects in this process's memory (shared-memory segments for those over 64 KiB).

    Args:
        capacity: bytes of objects it may hold (int or "64M"); creates beyond fail with
            OutOfCapacity.
        default_ttl: object TTL when a create names none (default: none).
        lease_ttl: lease TTL (default 30 s; handles renew theirs in the background).
        pool: freed memory kept for reuse (default: up to 1 GiB, within capacity).
    """

    def __init__(
        self,
        capacity: Size = 1 << 30,
        *,
        default_ttl: Optional[TTL] = None,
        lease_ttl: Optional[TTL] = None,
        pool: Optional[Size] = None,
    ) -> None:
        cap = _size(capacity, "capacity")
        if cap == 0:
            raise InvalidArgument("capacity must be above 0")
        self._p = _packice.MemoryPeer(
            cap,
            None if pool is None else _size(pool, "pool"),
            _ttl_ms(default_ttl, "default_ttl"),
            _ttl_ms(lease_ttl, "lease_ttl"),
            None,
        )

    def __repr__(self) -> str:
        return f"<packice.MemoryPeer capacity={self.stats()['capacity_bytes']}>"


class SharedFSPeer(Peer):
    """Objects in a directory that several processes (or machines, over NFS) share; every
    process that opens the same directory sees the same objects (docs/sharedfs.md).

    Args:
        dir: the shared directory (created if missing).
        sync: fdatasync each object before its seal returns (off only for scratch data).
        default_ttl: object TTL when a create names none.
        lease_ttl: lease TTL.
        abandoned_after: an unsealed object of a dead writer untouched this long is removed.
        gc_interval: how often this process collects expired and abandoned objects.
        writer_id: who this process is in object headers (default "hostname:pid").
    """

    def __init__(
        self,
        dir: Union[str, "_os.PathLike[str]"],
        *,
        sync: bool = True,
        default_ttl: Optional[TTL] = None,
        lease_ttl: Optional[TTL] = None,
        abandoned_after: Optional[TTL] = None,
        gc_interval: Optional[TTL] = None,
        writer_id: str = "",
    ) -> None:
        self.dir = _os.fspath(dir)
        self._p = _packice.SharedFSPeer(
            self.dir,
            sync,
            _ttl_ms(default_ttl, "default_ttl"),
            _ttl_ms(lease_ttl, "lease_ttl"),
            _ttl_ms(abandoned_after, "abandoned_after"),
            _ttl_ms(gc_interval, "gc_interval"),
            writer_id,
        )

    def collect_garbage(self) -> Dict[str, int]:
        """Scans the directory now: unbinds expired objects, removes those of dead writers."""
        return self._p.collect_garbage()

    def __repr__(self) -> str:
        return f"<packice.SharedFSPeer {self.dir!r}>"


# --- connecting ------------------------------------------------------------------------------


def default_url() -> str:
    """``$PACKICE_URL``, else the default socket of a local packiced as ``uds://``."""
    return _packice.default_url()


def connect(
    target: Union[str, Peer, None] = None,
    *,
    token: Optional[str] = None,
    ca_file: Optional[str] = None,
) -> Client:
    """Connects to a node or an in-process peer.

    Args:
        target: ``"uds:///path/to/packice.sock"`` (or a bare absolute socket path): a local
            node, zero-copy; ``"http://host:port"`` / ``"https://..."``: the HTTP API (bytes
            copied); ``"grpc://host:port"`` / ``"grpcs://..."``: the node's gRPC port (bytes
            copied); a :class:`Peer`: in this process, the direct transport; None:
            :func:`default_url`. :meth:`Client.group` needs a gRPC or HTTP URL.
        token: bearer token for HTTP and gRPC (default ``$PACKICE_TOKEN``).
        ca_file: PEM CAs for https and grpcs (default ``$PACKICE_CA_FILE``, else the system's).

    Errors: InvalidArgument (bad URL), Unavailable (no node there).
    """
    if isinstance(target, Peer):
        return Client(_packice.connect_peer(target._p), repr(target))
    if target is None:
        target = default_url()
    if not isinstance(target, str):
        target = _os.fspath(target)
    handle = _packice.connect_url(target, token or "", ca_file or "")
    return Client(handle, target, url=target, token=token or "", ca_file=ca_file or "")


from .kv import Kv, KvEvent, KvItem, KvWatch  # noqa: E402 (kv.py uses the converters above)
from .queue import Queue, QueueReader, QueueRecord, QueueWriter  # noqa: E402
