"""Packice's exceptions: one class per stable status code (docs/errors.md).

Every failed call raises a subclass of :class:`PackiceError` carrying the code's number
(``.code``), its stable name (``.name``) and the node's message (``.message``)::

    try:
        client.get("nope")
    except packice.NotFound as e:
        print(e.code, e.name, e.message)   # 1 not_found no object 'nope'

A few also derive from the built-in exception that means the same thing, so generic handlers
work too: ``NotFound`` is a ``KeyError``, ``InvalidArgument`` a ``ValueError``, ``Timeout`` a
``TimeoutError`` and ``Unavailable`` a ``ConnectionError``.
"""

from __future__ import annotations

from typing import Dict, Type

__all__ = [
    "PackiceError",
    "NotFound",
    "AlreadyExists",
    "WrongState",
    "LeaseExpired",
    "OutOfCapacity",
    "InvalidArgument",
    "PermissionDenied",
    "Unavailable",
    "ProtocolError",
    "Timeout",
    "Internal",
    "Aborted",
    "Unimplemented",
    "DigestMismatch",
    "OutOfRange",
    "DataLoss",
]


class PackiceError(Exception):
    """Base class of every Packice error.

    Attributes:
        code: the stable numeric status code (docs/errors.md).
        name: its stable lower-case name, e.g. ``"not_found"``.
        message: what went wrong, as the node or the client library said it.
    """

    code: int = -1
    name: str = "unknown"

    def __init__(self, message: str = "", code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self):  # picklable despite the built-in bases (OSError's own __reduce__)
        return (_from_status, (self.code, self.message))


class NotFound(PackiceError, KeyError):
    """No sealed object under the key (never created, deleted, expired, or still being
    written)."""

    code, name = 1, "not_found"


class AlreadyExists(PackiceError):
    """An exclusive create of a key that is bound or being created, or an exclusive object that
    lost the race at seal."""

    code, name = 2, "already_exists"


class WrongState(PackiceError):
    """The handle was already sealed, aborted, released or closed."""

    code, name = 3, "wrong_state"


class LeaseExpired(PackiceError):
    """The lease is unknown, expired, already ended, or not held by this connection."""

    code, name = 4, "lease_expired"


class OutOfCapacity(PackiceError):
    """The object does not fit, even after the reuse pool is given up; the message says how much
    is free."""

    code, name = 5, "out_of_capacity"


class InvalidArgument(PackiceError, ValueError):
    """Bad key, metadata over limits, a size or offset out of range, a bad URL, ..."""

    code, name = 6, "invalid_argument"


class PermissionDenied(PackiceError):
    """The lease's mode does not allow the call."""

    code, name = 7, "permission_denied"


class Unavailable(PackiceError, ConnectionError):
    """No node at the URL, or the connection broke."""

    code, name = 8, "unavailable"


class ProtocolError(PackiceError):
    """A frame over the size limit, a message that does not parse, a reply that does not match
    its request."""

    code, name = 9, "protocol_error"


class Timeout(PackiceError, TimeoutError):
    """A bounded wait ran out."""

    code, name = 10, "timeout"


class Internal(PackiceError):
    """A system call failed (the message has errno's text) or a bug."""

    code, name = 11, "internal"


class Aborted(PackiceError):
    """The object was discarded before it was sealed."""

    code, name = 12, "aborted"


class Unimplemented(PackiceError):
    """The transport or peer does not offer the call."""

    code, name = 13, "unimplemented"


class DigestMismatch(PackiceError, ValueError):
    """Content-addressed bytes whose hash or size is not the digest they were stored under."""

    code, name = 14, "digest_mismatch"


class OutOfRange(PackiceError, IndexError):
    """A byte range that starts or ends past the end of the object."""

    code, name = 15, "out_of_range"


class DataLoss(PackiceError):
    """Stored data is corrupt (a bad record before valid ones in a log); nothing was repaired."""

    code, name = 16, "data_loss"


_BY_CODE: Dict[int, Type[PackiceError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        AlreadyExists,
        WrongState,
        LeaseExpired,
        OutOfCapacity,
        InvalidArgument,
        PermissionDenied,
        Unavailable,
        ProtocolError,
        Timeout,
        Internal,
        Aborted,
        Unimplemented,
        DigestMismatch,
        OutOfRange,
        DataLoss,
    )
}


def error_class(code: int) -> Type[PackiceError]:
    """The exception class of a status code (``PackiceError`` itself for a code this version does
    not know)."""
    return _BY_CODE.get(code, PackiceError)


def _from_status(code: int, message: str) -> PackiceError:
    """The exception for a non-OK status (the C++ extension raises what this returns)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return PackiceError(message, code)
    return cls(message)
