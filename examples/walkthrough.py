#!/usr/bin/env python3
"""The seed's walkthrough in Python: process A creates an object, writes it and seals it;
process B, a separate process, gets it by id and reads the bytes zero-copy.

    export PYTHONPATH=$PWD/build/python            # scripts/run.sh prints this line
    python3 examples/walkthrough.py [--url uds:///path/to/packice.sock]

It runs A and B as two child processes of its own and prints what each did. Exit status 0 when
B read exactly what A wrote. (examples/walkthrough.cc is the same in C++.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import packice

GREETING = b"Hello Packice"
LARGE = 64 << 20
# Byte i of the large object is PATTERN[i % 256]: B checks it without A's help.
PATTERN = bytes((i * 131 + 7) & 0xFF for i in range(256))

try:
    import numpy as np
except ImportError:  # the walkthrough runs without numpy, only slower
    np = None


def fill(view: memoryview) -> None:
    """Writes the pattern into `view` in place (the node's shared memory)."""
    if np is not None:
        np.frombuffer(view, np.uint8).reshape(-1, 256)[:] = np.frombuffer(PATTERN, np.uint8)
    else:
        chunk = PATTERN * 4096
        for off in range(0, len(view), len(chunk)):
            view[off : off + len(chunk)] = chunk


def check(view: memoryview) -> bool:
    if np is not None:
        rows = np.frombuffer(view, np.uint8).reshape(-1, 256)
        return bool((rows == np.frombuffer(PATTERN, np.uint8)).all())
    chunk = PATTERN * 4096
    return all(view[off : off + len(chunk)] == chunk for off in range(0, len(view), len(chunk)))


def writer(url: str) -> None:
    client = packice.connect(url)
    pid = os.getpid()
    # As the seed writes it: no key (the node picks an id), a TTL in the metadata.
    with client.create(meta={"ttl": 600, "author": "process-A"}) as obj:
        obj.write(b"Hello Packice")
        obj.seal()
    log(f"[A pid={pid}] created {obj.id}, wrote {obj.size} bytes, sealed "
        f"(version {obj.info.version})")

    with client.create(size=LARGE, meta={"ttl": 600, "author": "process-A"}) as big:
        fill(big.buffer)  # straight into the node's memory; no view outlives the call
        big.seal()
    log(f"[A pid={pid}] created {big.id}, wrote {LARGE >> 20} MiB straight into the node's "
        "shared memory, sealed")
    print(obj.id, big.id)


def reader(url: str, small_id: str, big_id: str) -> int:
    client = packice.connect(url)
    pid = os.getpid()
    with client.get(small_id) as obj:
        print(obj.buffer.tobytes())
        log(f"[B pid={pid}] got {small_id}: {obj.buffer.tobytes()!r} "
            f"(meta author={obj.meta.get('author')}, ttl {obj.ttl:g} s)")
        if obj.buffer.tobytes() != GREETING:
            log("[B] error: content differs")
            return 1

    t0 = time.perf_counter()
    with client.get(big_id) as big:
        view = big.buffer  # a read-only memoryview over the mapped bytes: no copy
        t1 = time.perf_counter()
        ok = check(view)
        t2 = time.perf_counter()
        address = np.frombuffer(view, np.uint8).ctypes.data if np is not None else 0
        log(
            f"[B pid={pid}] got {big_id}: {view.nbytes >> 20} MiB mapped read-only"
            f"{f' at {address:#x}' if address else ''} in {(t1 - t0) * 1e6:.0f} us (no copy), "
            f"checked every byte in {(t2 - t1) * 1e6:.0f} us"
        )
        del view
    if not ok:
        log("[B] error: the large object differs")
        return 1
    return 0


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=None,
                    help="the node (default: $PACKICE_URL, else the default socket)")
    ap.add_argument("role", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    url = args.url or packice.default_url()
    if args.role[:1] == ["writer"]:
        writer(url)
        return 0
    if args.role[:1] == ["reader"] and len(args.role) == 3:
        return reader(url, args.role[1], args.role[2])

    log(f"walkthrough against {url}")
    me = [sys.executable, os.path.abspath(__file__), "--url", url]
    a = subprocess.run(me + ["writer"], stdout=subprocess.PIPE, text=True)
    if a.returncode != 0:
        return 1
    small_id, big_id = a.stdout.split()
    b = subprocess.run(me + ["reader", small_id, big_id])
    if b.returncode != 0:
        return 1
    log(f"walkthrough ok: B read exactly what A wrote, through {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
