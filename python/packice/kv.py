"""The node's namespaced KV (docs/kv.md) from Python: :meth:`packice.Client.kv`.

::

    client = packice.connect("uds:///run/packice.sock")      # or "grpc://host:port"
    kv = client.kv("/team/ns")
    kv.create(engine="memtable")                             # once; AlreadyExists after
    rev = kv.put("config/a", "42", ttl="1h")                 # str keys and values are UTF-8
    kv.get("config/a")                                       # b'42'
    item = kv.get_item("config/a")                           # value, revisions, version, expiry
    kv.put("config/a", b"43", if_mod_revision=item.mod_revision)   # compare-and-swap
    for item in kv.scan(prefix="config/"):                   # every page, in key order
        print(item.key, item.value)
    kv.batch([("put", "a", "1"), ("delete", "b")])           # atomic: one revision
    with kv.watch("config/", prefix=True, start_revision=rev, prev_kv=True) as w:
        for event in w:                                      # blocks; Ctrl-C interrupts
            print(event.type, event.key, event.value, event.mod_revision)

A :class:`Kv` is a handle on one namespace path; making one sends nothing. Every handle of a
:class:`~packice.Client` shares one KV connection, made at the first call that needs it (the C++
``ConnectKv`` client over the URL the client was connected with: ``uds://`` or ``grpc(s)://``;
the node's HTTP API has no KV client here, so an ``http(s)://`` client raises InvalidArgument).
Calls are safe from any number of threads and release the GIL while they wait.

Keys and values are bytes; a ``str`` is taken as its UTF-8 and anything bytes-like
(``bytearray``, ``memoryview``) as its bytes. What comes back is always ``bytes``.

Errors are the module's exceptions (:mod:`packice.errors`): NotFound (a ``KeyError``: no such
key, or no such namespace: the message says which), InvalidArgument (a ``ValueError``: a bad
namespace path, an empty or oversize key, a value over 1 MiB, bad options), and for
compare-and-swap AlreadyExists (expected absent, present), NotFound (expected a revision,
absent) and WrongState (at another revision).
"""

from __future__ import annotations

import collections as _collections
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from . import _packice
from .errors import Aborted, InvalidArgument, NotFound, PackiceError, Timeout

if TYPE_CHECKING:
    from . import TTL, Client

__all__ = ["Kv", "KvItem", "KvEvent", "KvWatch"]

Data = Union[bytes, bytearray, memoryview, str]  # a key or a value (str: its UTF-8)
BatchOp = Tuple[Any, ...]  # ("put", key, value[, options]) or ("delete", key[, options])

_PAGE = 1000  # keys per scan request by default (the node's largest page is 10000)


def _ttl_ms(ttl: Optional["TTL"], what: str) -> Optional[int]:
    from . import _ttl_ms as ms  # packice/__init__.py's durations: seconds, timedelta, "30s"

    return ms(ttl, what)


def _data(x: Data, what: str) -> bytes:
    """A key's or a value's bytes."""
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode()
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    raise InvalidArgument(f"a KV {what} is bytes or str, got {type(x).__name__}")


def _opt(x: Optional[Data], what: str) -> bytes:
    return b"" if x is None else _data(x, what)


def _revision(r: Optional[int], what: str = "if_mod_revision") -> Optional[int]:
    if r is None:
        return None
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise InvalidArgument(f"{what} is a revision, an int >= 0, got {r!r}")
    return r


@dataclass(frozen=True)
class KvItem:
    """A key, its value and metadata (a ``KeyValue``).

    Attributes:
        key, value: bytes (``value`` is ``b""`` in a ``keys_only`` scan).
        create_revision: the revision of the put that created the key.
        mod_revision: the revision of its last put.
        version: 1 at creation, +1 per put.
        expires_unix_ms: its expiry, wall-clock milliseconds since the epoch; 0: no TTL.
    """

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    expires_unix_ms: int = 0

    @classmethod
    def _from_raw(cls, raw: Optional[tuple]) -> Optional["KvItem"]:
        return None if raw is None else cls(*raw)


@dataclass(frozen=True)
class KvEvent:
    """One change seen by a watch.

    Attributes:
        type: ``"put"`` or ``"delete"``.
        key: the key.
        value: the new value (``b""`` for a delete).
        mod_revision: the revision of the change (for a delete, the deleting revision).
        create_revision, version, expires_unix_ms: the key's after a put (0 for a delete).
        prev: the key's previous :class:`KvItem` with ``prev_kv=True`` when it existed, else
            None.
        expired: a delete made by the TTL reaper.
    """

    type: str
    key: bytes
    value: bytes
    mod_revision: int
    create_revision: int = 0
    version: int = 0
    expires_unix_ms: int = 0
    prev: Optional[KvItem] = None
    expired: bool = False

    @property
    def revision(self) -> int:
        return self.mod_revision

    @classmethod
    def _from_raw(cls, raw: tuple) -> "KvEvent":
        kind, (key, value, create, mod, version, expires), prev, expired = raw
        return cls(
            type="put" if kind == 1 else "delete",
            key=key,
            value=value,
            mod_revision=mod,
            create_revision=create,
            version=version,
            expires_unix_ms=expires,
            prev=KvItem._from_raw(prev),
            expired=expired,
        )


class KvWatch:
    """A watch from :meth:`Kv.watch`: the changes of one key or a prefix, in revision order,
    each revision whole (a batch's events together).

    Iterate it (``for event in w``) or call :meth:`next`; both block with the GIL released, in
    slices of 150 ms between which Python's signal handlers run (Ctrl-C raises
    KeyboardInterrupt). It is read by one thread at a time (another thread reading at once
    gets RuntimeError); :meth:`close` may come from any thread, also while one waits.

    The watch's end raises the status's exception with the attribute ``resume_revision``:
    OutOfCapacity "watcher too slow, resume from revision R" (the events came faster than they
    were read: the node's and the client's buffers are bounded), NotFound (the namespace was
    deleted), Aborted (cancelled: by :meth:`close`, or the node stopping), Unavailable (the
    connection broke). A new watch from ``resume_revision`` goes on where this one stopped,
    with no gap and no duplicate. After :meth:`close` the iterator just stops;
    :meth:`next` raises Aborted.

    Use it as a context manager, or call :meth:`close`; dropping it cancels it too.
    """

    def __init__(self, handle: "_packice.KvWatch", what: str) -> None:
        self._w = handle
        self._what = what
        self._pending: Deque[KvEvent] = _collections.deque()
        self._closed = False
        self._closed_at = 0

    def next(self, timeout: Optional["TTL"] = None) -> KvEvent:
        """The next event. ``timeout`` (seconds, a timedelta or "500ms"; None: no bound) ends
        the wait with Timeout (a ``TimeoutError``); the watch goes on. The end of the watch
        raises its exception (see the class doc)."""
        if self._pending:
            return self._pending.popleft()
        if self._closed:
            error = Aborted(f"the watch of {self._what} was closed")
            error.resume_revision = self._closed_at  # type: ignore[attr-defined]
            raise error
        raws = self._w.next(_ttl_ms(timeout, "timeout"))
        if raws is None:
            raise Timeout(f"no event for {self._what} within {timeout!r}")
        self._pending.extend(KvEvent._from_raw(raw) for raw in raws)
        return self._pending.popleft()

    def __iter__(self) -> "KvWatch":
        return self

    def __next__(self) -> KvEvent:
        try:
            return self.next()
        except Aborted:
            if self._closed:
                raise StopIteration from None
            raise

    @property
    def resume_revision(self) -> int:
        """The first revision not handed out whole yet: where a new watch goes on."""
        if self._closed:
            return self._closed_at
        if self._pending:
            return self._pending[0].mod_revision
        return self._w.resume_revision

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Cancels the watch (idempotent). Events not yet read are dropped; a thread waiting
        in the iterator stops (StopIteration), one in :meth:`next` gets Aborted."""
        if self._closed:
            return
        self._closed_at = self.resume_revision
        self._closed = True
        self._pending.clear()
        self._w.cancel()

    def __enter__(self) -> "KvWatch":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"resume_revision={self.resume_revision}"
        return f"<packice.KvWatch {self._what} {state}>"


def _batch_op(op: BatchOp) -> tuple:
    """One :meth:`Kv.batch` operation as (is_delete, key, value, ttl_ms, if_mod, ignore)."""
    if not isinstance(op, (tuple, list)) or not op or op[0] not in ("put", "delete"):
        raise InvalidArgument(
            f'a batch operation is ("put", key, value[, options]) or ("delete", key[, options]), '
            f"got {op!r}"
        )
    kind = op[0]
    n = 3 if kind == "put" else 2
    if len(op) not in (n, n + 1):
        raise InvalidArgument(f"a {kind} in a batch has {n - 1} or {n} items after {kind!r}: {op!r}")
    options: Mapping[str, Any] = op[n] if len(op) > n else {}
    allowed = {"ttl", "if_mod_revision"} if kind == "put" else {"if_mod_revision", "ignore_missing"}
    if not isinstance(options, Mapping) or set(options) - allowed:
        raise InvalidArgument(f"a batch {kind}'s options are a dict of {sorted(allowed)}: {op!r}")
    if_mod = _revision(options.get("if_mod_revision"))
    if kind == "put":
        ttl = _ttl_ms(options.get("ttl"), "ttl")
        return (False, _data(op[1], "key"), _data(op[2], "value"), ttl, if_mod, False)
    return (True, _data(op[1], "key"), b"", None, if_mod, bool(options.get("ignore_missing")))


class Kv:
    """One namespace of a node's KV, from :meth:`packice.Client.kv` (see the module doc).

    Also a mapping of sorts: ``kv[key]`` is :meth:`get`, ``kv[key] = value`` :meth:`put`,
    ``del kv[key]`` :meth:`delete`, ``key in kv`` whether the key is live, and iterating a
    Kv gives its keys in order.
    """

    def __init__(self, client: "Client", path: str) -> None:
        self._client = client
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def _h(self) -> "_packice.KvClient":
        return self._client._kv_client()

    # Namespaces.

    def create(
        self,
        *,
        engine: str = "swisstable",
        write_mode: str = "linear",
        fsync: str = "always",
        fsync_interval: Optional["TTL"] = None,
        default_ttl: Optional["TTL"] = None,
    ) -> None:
        """Creates the namespace (durable before this returns).

        Args:
            engine: ``"swisstable"`` (a hash table: point operations; scans work but read the
                whole namespace per page) or ``"memtable"`` (ordered: for scans).
            write_mode: ``"linear"`` (writes applied and acknowledged in arrival order) or
                ``"nolinear"`` (writes to different keys concurrently, in no promised order).
            fsync: ``"always"`` (acknowledged once on the disk), ``"interval"`` (on the disk
                at most ``fsync_interval`` later) or ``"never"``.
            fsync_interval: seconds, a timedelta or "10ms" (1 ms .. 60 s; default 10 ms).
            default_ttl: the TTL of keys put without one (default: none).

        Errors: AlreadyExists, InvalidArgument (the path or an option).
        """
        self._h().create_namespace(
            self._path,
            engine,
            write_mode,
            fsync,
            _ttl_ms(fsync_interval, "fsync_interval"),
            _ttl_ms(default_ttl, "default_ttl"),
        )

    def drop(self) -> None:
        """Deletes the namespace and every key in it; its watches end with NotFound.
        Errors: NotFound."""
        self._h().delete_namespace(self._path)

    def info(self) -> Dict[str, Any]:
        """The namespace as :meth:`packice.Client.kv_namespaces` lists it. Errors: NotFound."""
        for ns in self._h().list_namespaces(self._path):
            if ns["path"] == self._path:
                return ns
        raise NotFound(f"no namespace '{self._path}'")

    # Keys.

    def get(self, key: Data) -> bytes:
        """The value of ``key``. Errors: NotFound (absent or expired, or no namespace)."""
        return self._h().get(self._path, _data(key, "key"))[1]

    def get_item(self, key: Data) -> KvItem:
        """``key``'s value and metadata (:class:`KvItem`). Errors: NotFound."""
        return KvItem(*self._h().get(self._path, _data(key, "key")))

    def put(
        self,
        key: Data,
        value: Data,
        *,
        ttl: Optional["TTL"] = None,
        if_mod_revision: Optional[int] = None,
        prev_kv: bool = False,
    ) -> Union[int, Tuple[int, Optional[KvItem]]]:
        """Writes ``value`` under ``key``; returns the revision of the write, or with
        ``prev_kv`` (revision, the :class:`KvItem` it replaced or None).

        Args:
            ttl: seconds, a timedelta or "30s"; None: the namespace's ``default_ttl``; 0: none.
            if_mod_revision: compare-and-swap: write only if the key is at this mod revision;
                0: only if it is absent. A mismatch raises AlreadyExists (expected absent),
                NotFound (expected a revision, absent) or WrongState (at another revision).
        """
        rev, prev = self._h().put(
            self._path,
            _data(key, "key"),
            _data(value, "value"),
            _ttl_ms(ttl, "ttl"),
            _revision(if_mod_revision),
            prev_kv,
        )
        return (rev, KvItem._from_raw(prev)) if prev_kv else rev

    def delete(
        self, key: Data, *, if_mod_revision: Optional[int] = None, prev_kv: bool = False
    ) -> Union[int, Tuple[int, Optional[KvItem]]]:
        """Removes ``key``; returns the revision of the delete, or with ``prev_kv``
        (revision, the deleted :class:`KvItem`). ``if_mod_revision`` (> 0): only if the key is
        at that revision. Errors: NotFound (absent), WrongState (another revision)."""
        rev, prev = self._h().delete(
            self._path, _data(key, "key"), _revision(if_mod_revision), prev_kv
        )
        return (rev, KvItem._from_raw(prev)) if prev_kv else rev

    def scan(
        self,
        prefix: Optional[Data] = None,
        *,
        start: Optional[Data] = None,
        end: Optional[Data] = None,
        after: Optional[Data] = None,
        limit: Optional[int] = None,
        page_size: int = _PAGE,
        keys_only: bool = False,
    ) -> Iterator[KvItem]:
        """The keys starting with ``prefix``, or in ``[start, end)`` (bytewise; ``end`` None:
        to the last), after the key ``after``, in key order, as :class:`KvItem` s (values
        ``b""`` with ``keys_only``). Nothing given: the whole namespace.

        An iterator that asks the node for ``page_size`` keys at a time (1 .. 10000) and
        follows each page's continuation, up to ``limit`` items in all (None: every one). Not
        a snapshot across pages: a key written between two pages is seen or not according to
        where it sorts. Errors: InvalidArgument (both a prefix and a range).
        """
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise InvalidArgument(f"page_size is an int >= 1, got {page_size!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidArgument(f"limit is an int >= 0 or None, got {limit!r}")
        h = self._h()
        p, s, e = _opt(prefix, "prefix"), _opt(start, "start"), _opt(end, "end")
        return self._pages(h, p, s, e, _opt(after, "after"), limit, page_size, keys_only)

    def _pages(self, h, prefix, start, end, cursor, limit, page_size, keys_only):
        left = limit
        while left is None or left > 0:
            n = page_size if left is None else min(left, page_size)
            raws, cursor, _ = h.scan(self._path, prefix, start, end, cursor, n, keys_only)
            for raw in raws:
                yield KvItem(*raw)
            if left is not None:
                left -= len(raws)
            if not cursor:
                return

    def keys(self, prefix: Optional[Data] = None) -> Iterator[bytes]:
        """The keys starting with ``prefix`` (None: every key), in order."""
        return (item.key for item in self.scan(prefix, keys_only=True))

    def batch(self, ops: Iterable[BatchOp]) -> int:
        """Applies ``ops`` atomically under one revision and returns it.

        Each operation is ``("put", key, value)``, ``("put", key, value, {"ttl": ...,
        "if_mod_revision": ...})``, ``("delete", key)`` or ``("delete", key,
        {"if_mod_revision": ..., "ignore_missing": True})``. Every condition is checked first:
        if one fails, the batch raises that condition's error and writes nothing; a delete of
        an absent key fails the batch (NotFound) unless ``ignore_missing``. At most 1024
        operations and 4 MiB of keys and values, each key once (else InvalidArgument).
        """
        return self._h().commit(self._path, [_batch_op(op) for op in ops])

    def multi_get(self, keys: Iterable[Data]) -> List[Optional[bytes]]:
        """The value of each key, in order, or None for one that is absent: 1024 keys per
        message to the node (and keys a reply had no room for, past its 2 MiB, asked again).
        Errors: InvalidArgument, NotFound (no such namespace)."""
        return self._h().multi_get(self._path, [_data(k, "key") for k in keys])

    def multi_put(
        self,
        items: Union[Mapping[Data, Data], Iterable[Tuple[Data, Data]]],
        *,
        ttl: Optional["TTL"] = None,
    ) -> List[int]:
        """Puts each (key, value) of ``items`` (a dict or pairs), in order, each on its own
        (not atomic: :meth:`batch` is), with ``ttl`` for all; returns their revisions. Up to
        1024 puts per message to the node.

        Every put is attempted. If any failed, the first failure's exception is raised after
        all of them, with the attribute ``results``: one entry per item, its revision (int) or
        its exception; the others were written. Errors: NotFound (no such namespace), the
        items' own (InvalidArgument for an oversize key or value).
        """
        pairs = items.items() if isinstance(items, Mapping) else items
        ttl_ms = _ttl_ms(ttl, "ttl")
        puts = []
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InvalidArgument(f"multi_put takes a dict or (key, value) pairs, got {pair!r}")
            puts.append((_data(pair[0], "key"), _data(pair[1], "value"), ttl_ms, None))
        results = self._h().multi_put(self._path, puts)
        for r in results:
            if isinstance(r, PackiceError):
                r.results = results  # type: ignore[attr-defined]
                raise r
        return results

    def watch(
        self,
        key: Data = b"",
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> KvWatch:
        """Watches ``key``, or with ``prefix`` every key starting with it (no key: the whole
        namespace), from ``start_revision`` (0: what happens from now on; the watch has
        started when this returns). With ``prev_kv`` each event carries the key's previous
        value. See :class:`KvWatch`.

        Errors: OutOfRange "compacted, oldest is R" (a revision older than the node keeps, or
        with ``prev_kv`` older than its memory), InvalidArgument (a future revision),
        NotFound (no such namespace).
        """
        k = _data(key, "key")
        prefix = prefix or not k  # no key: the whole namespace
        handle = self._h().watch(
            self._path, k, prefix, _revision(start_revision, "start_revision") or 0, prev_kv
        )
        shown = f"{self._path} {k!r}{'*' if prefix else ''}"
        return KvWatch(handle, shown)

    # The mapping protocol.

    def __getitem__(self, key: Data) -> bytes:
        return self.get(key)

    def __setitem__(self, key: Data, value: Data) -> None:
        self.put(key, value)

    def __delitem__(self, key: Data) -> None:
        self.delete(key)

    def __contains__(self, key: Data) -> bool:
        try:
            self.get_item(key)
            return True
        except NotFound:  # no such key, or no such namespace: it holds no keys
            return False

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def __repr__(self) -> str:
        return f"<packice.Kv {self._path!r} at {self._client._target}>"

