#!/usr/bin/env python3
"""The seed's shared-filesystem demo: processes that share nothing but a directory share objects.

    export PYTHONPATH=$PWD/build/python            # scripts/run.sh prints this line
    python3 examples/shared_fs_demo.py [--dir DIR] [--packiced build/packiced]

1. Process A opens a SharedFSPeer on DIR in its own process and connects to it (the direct
   transport: ``packice.connect(peer)``), creates an object and seals it. Process B, a separate
   process with its own SharedFSPeer on the same DIR, gets it by id. DIR could be an NFS mount
   shared by two machines (docs/sharedfs.md).
2. When packiced is at hand (--packiced, $PACKICE_BIN_DIR or build/), two nodes
   (``packiced --store sharedfs``) serve DIR too: an object put through node 1 is read through
   node 2, and node 2 also serves the object process A wrote in step 1.

DIR defaults to a new temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import packice

BIG = 8 << 20


def process_a(shared_dir: str) -> None:
    peer = packice.SharedFSPeer(shared_dir)

    # 1. Connecting: a URL picks the transport; an in-process peer is reached directly.
    client = packice.connect(peer)

    # 2. Pythonic resource handling: the with block discards the object on an exception.
    with client.create(meta={"ttl": 60}) as obj:
        obj.write(b"Hello Packice")
        # 3. An explicit seal: from here on the object is immutable and readable.
        obj.seal()
    say("A", f"created {obj.id} in {shared_dir}, sealed")

    # A larger object written in place: its bytes are the file's pages, mapped.
    with client.create("demo/weights", size=BIG, meta={"dtype": "uint8"}) as w:
        w.buffer[:] = bytes(range(256)) * (BIG // 256)
        w.seal()
    say("A", f"created demo/weights: {BIG >> 20} MiB written into the mapped file, sealed")
    print(obj.id)


def process_b(shared_dir: str, object_id: str) -> None:
    client = packice.connect(packice.SharedFSPeer(shared_dir))

    # 4. Read it like a local object.
    with client.get(object_id) as obj:
        print(obj.buffer.tobytes())
        say("B", f"got {object_id}: {obj.buffer.tobytes()!r} "
                 f"(ttl {obj.ttl:g} s, tier {obj.info.tier})")
        assert obj.buffer.tobytes() == b"Hello Packice"

    with client.get("demo/weights") as w:
        view = w.buffer  # read-only, mapped from the shared file: no copy
        assert view.readonly and view[:256].tobytes() == bytes(range(256))
        assert view[-256:].tobytes() == bytes(range(256))
        say("B", f"got demo/weights: {view.nbytes >> 20} MiB mapped read-only, meta {w.meta}")
        del view


def find_packiced(given: Optional[str]) -> Optional[str]:
    candidates: List[Path] = []
    if given:
        candidates.append(Path(given))
    if os.environ.get("PACKICE_BIN_DIR"):
        candidates.append(Path(os.environ["PACKICE_BIN_DIR"]) / "packiced")
    candidates.append(Path(__file__).resolve().parents[1] / "build" / "packiced")
    found = shutil.which("packiced")
    if found:
        candidates.append(Path(found))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


def start_node(packiced: str, shared_dir: str, socket: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [packiced, "--store", "sharedfs", "--data-dir", shared_dir, "--socket", socket,
         "--log-level", "warn"]
    )
    deadline = time.monotonic() + 20
    while not os.path.exists(socket):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"packiced did not start on {socket}")
        time.sleep(0.02)
    return proc


def nodes(packiced: str, shared_dir: str, object_id: str, scratch: str) -> None:
    sockets = [os.path.join(scratch, f"node{i}.sock") for i in (1, 2)]
    procs = [start_node(packiced, shared_dir, s) for s in sockets]
    try:
        say("nodes", f"packiced pids {procs[0].pid} and {procs[1].pid} serve {shared_dir}")
        one = packice.connect("uds://" + sockets[0])
        two = packice.connect("uds://" + sockets[1])
        one.put("demo/via-node-1", b"put through node 1", meta={"ttl": "1m"})
        with two.get("demo/via-node-1") as obj:
            say("nodes", f"node 2 serves what node 1 stored: {obj.buffer.tobytes()!r}")
            assert obj.buffer.tobytes() == b"put through node 1"
        with two.get(object_id) as obj:
            say("nodes", f"node 2 serves what process A stored: {obj.buffer.tobytes()!r}")
            assert obj.buffer.tobytes() == b"Hello Packice"
        keys = [i.key for i in two.list("demo/")]
        say("nodes", f"both see the same keys: {keys}")
        assert keys == [i.key for i in one.list("demo/")]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def say(who: str, line: str) -> None:
    print(f"[{who} pid={os.getpid()}] {line}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", help="the shared directory (default: a new temporary one)")
    ap.add_argument("--packiced", help="packiced for step 2 (default: $PACKICE_BIN_DIR, build/)")
    ap.add_argument("--no-nodes", action="store_true", help="skip step 2")
    ap.add_argument("role", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role[:1] == ["a"]:
        process_a(args.role[1])
        return 0
    if args.role[:1] == ["b"]:
        process_b(args.role[1], args.role[2])
        return 0

    scratch = tempfile.mkdtemp(prefix="packice-demo-")
    shared_dir = args.dir or os.path.join(scratch, "shared")
    try:
        me = [sys.executable, os.path.abspath(__file__)]
        a = subprocess.run(me + ["a", shared_dir], stdout=subprocess.PIPE, text=True)
        if a.returncode != 0:
            return 1
        object_id = a.stdout.strip()
        if subprocess.run(me + ["b", shared_dir, object_id]).returncode != 0:
            return 1
        print("shared-filesystem demo: B read what A wrote, through nothing but the directory",
              file=sys.stderr)
        if not args.no_nodes:
            packiced = find_packiced(args.packiced)
            if packiced is None:
                print("(no packiced found: step 2 skipped; pass --packiced)", file=sys.stderr)
            else:
                nodes(packiced, shared_dir, object_id, scratch)
                print("shared-filesystem demo: two nodes served one directory", file=sys.stderr)
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
