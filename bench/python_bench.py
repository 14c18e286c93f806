#!/usr/bin/env python3
"""Python get of a 64 MiB object: Packice (zero-copy, time to a memoryview) vs redis-py GET of
the same value, and vs reading the same bytes from a local file.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_bench.py [--packiced build/packiced]

It starts its own packiced (--store memory, Unix socket) and, when Debian's redis-server and
python3-redis are installed, its own redis-server (Unix socket, no persistence) in a temporary
directory, and stops both at the end. Without Redis the file is the only baseline. Each
measurement is repeated (--iterations, after --warmup) and the median and minimum are printed
as a Markdown table with ratios; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

import packice

try:
    import redis  # python3-redis
except ImportError:
    redis = None


def find_packiced(given: Optional[str]) -> str:
    candidates = [given] if given else []
    if os.environ.get("PACKICE_BIN_DIR"):
        candidates.append(os.path.join(os.environ["PACKICE_BIN_DIR"], "packiced"))
    root = Path(__file__).resolve().parents[1]
    candidates += [str(root / "build" / "packiced"), str(root / "build-py" / "packiced")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    sys.exit("no packiced found: pass --packiced or set PACKICE_BIN_DIR")


def wait_for(path: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{what} did not start")
        time.sleep(0.02)


def measure(fn: Callable[[], float], warmup: int, iterations: int) -> Tuple[float, float]:
    """(median, min) seconds of `fn`, which returns the seconds it measured itself."""
    for _ in range(warmup):
        fn()
    times = [fn() for _ in range(iterations)]
    return statistics.median(times), min(times)


def read_all(view) -> int:
    """Reads every byte (summed as 64-bit words: memory speed, cannot be skipped)."""
    return int(np.frombuffer(view, dtype=np.uint64).sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packiced")
    ap.add_argument("--size", type=int, default=64 << 20)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    size = args.size
    scratch = tempfile.mkdtemp(prefix="packice-pybench-")
    procs: List[subprocess.Popen] = []
    try:
        sock = os.path.join(scratch, "packice.sock")
        node = subprocess.Popen(
            [find_packiced(args.packiced), "--store", "memory", "--capacity", "2G",
             "--socket", sock, "--log-level", "warn"])
        procs.append(node)
        wait_for(sock, node, "packiced")

        rng = np.random.default_rng(7)
        payload = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        want = read_all(payload)
        client = packice.connect("uds://" + sock)
        client.put("bench/large", payload)

        rows: Dict[str, Tuple[float, float]] = {}

        def packice_view() -> float:
            t0 = time.perf_counter()
            obj = client.get("bench/large")
            view = obj.buffer
            t = time.perf_counter() - t0
            assert view.nbytes == size
            del view
            obj.release()
            return t

        def packice_read() -> float:
            t0 = time.perf_counter()
            with client.get("bench/large") as obj:
                s = read_all(obj.buffer)
                t = time.perf_counter() - t0
            assert s == want
            return t

        def packice_release() -> float:
            obj = client.get("bench/large")
            read_all(obj.buffer)
            t0 = time.perf_counter()
            obj.release()
            return time.perf_counter() - t0

        def packice_bytes() -> float:
            t0 = time.perf_counter()
            data = client.get_bytes("bench/large")
            t = time.perf_counter() - t0
            assert len(data) == size
            return t

        rows["packice get -> memoryview (zero-copy)"] = measure(packice_view, args.warmup,
                                                                args.iterations)
        rows["packice get -> memoryview, every byte read"] = measure(packice_read, args.warmup,
                                                                     args.iterations)
        rows["packice release after a full read"] = measure(packice_release, args.warmup,
                                                           args.iterations)
        rows["packice get_bytes (a copy into bytes)"] = measure(packice_bytes, args.warmup,
                                                                args.iterations)

        redis_note = ""
        redis_server = shutil.which("redis-server")
        if redis is not None and redis_server:
            rsock = os.path.join(scratch, "redis.sock")
            rproc = subprocess.Popen(
                [redis_server, "--port", "0", "--unixsocket", rsock, "--save", "",
                 "--appendonly", "no", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL)
            procs.append(rproc)
            wait_for(rsock, rproc, "redis-server")
            clients = []
            if redis.utils.HIREDIS_AVAILABLE:  # python3-hiredis: redis-py's C parser
                clients.append(("hiredis parser", redis.Redis(unix_socket_path=rsock)))
            clients.append(("pure-Python parser", redis.Redis(connection_pool=redis.ConnectionPool(
                connection_class=redis.UnixDomainSocketConnection, path=rsock,
                parser_class=redis.connection.PythonParser))))
            clients[0][1].set("bench/large", payload)

            for parser, r in clients:
                def redis_view(r=r) -> float:
                    t0 = time.perf_counter()
                    view = memoryview(r.get("bench/large"))
                    t = time.perf_counter() - t0
                    assert view.nbytes == size
                    return t

                def redis_read(r=r) -> float:
                    t0 = time.perf_counter()
                    s = read_all(memoryview(r.get("bench/large")))
                    t = time.perf_counter() - t0
                    assert s == want
                    return t

                rows[f"redis-py GET -> memoryview ({parser})"] = measure(
                    redis_view, args.warmup, args.iterations)
                rows[f"redis-py GET -> memoryview, every byte read ({parser})"] = measure(
                    redis_read, args.warmup, args.iterations)
            server = subprocess.run([redis_server, "--version"], capture_output=True,
                                    text=True).stdout.split()
            version = next((w for w in server if w.startswith("v=")), "v=?")
            redis_note = (f"redis-server {version}, redis-py {redis.__version__} "
                          f"({', '.join(p for p, _ in clients)})")
        else:
            redis_note = "redis-server or python3-redis missing: the local file is the baseline"

        path = os.path.join(scratch, "large.bin")
        with open(path, "wb") as f:
            f.write(payload)

        def file_view() -> float:
            t0 = time.perf_counter()
            with open(path, "rb") as f:
                view = memoryview(f.read())
            t = time.perf_counter() - t0
            assert view.nbytes == size
            return t

        def file_read() -> float:
            t0 = time.perf_counter()
            with open(path, "rb") as f:
                s = read_all(memoryview(f.read()))
            t = time.perf_counter() - t0
            assert s == want
            return t

        rows["local file read() -> memoryview (page cache)"] = measure(file_view, args.warmup,
                                                                       args.iterations)
        rows["local file read() -> memoryview, every byte read"] = measure(
            file_read, args.warmup, args.iterations)

        try:
            rev = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]),
                                  "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip()
        except OSError:
            rev = "?"
        print(f"Packice {rev}, {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, "
              f"Python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cores; "
              f"{redis_note}; {size >> 20} MiB object, median and min of {args.iterations} after "
              f"{args.warmup} warm-up; load average after: "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print()
        print("| Python get of a %d MiB object | median | min | GB/s (median) |" % (size >> 20))
        print("|---|---|---|---|")
        for name, (med, lo) in rows.items():
            # Bytes per second only where the bytes were moved or read.
            moved = not (name.startswith("packice") and "every byte" not in name and
                         "get_bytes" not in name)
            rate = f"{size / med / 1e9:.2f}" if moved else "—"
            print(f"| {name} | {fmt(med)} | {fmt(lo)} | {rate} |")
        print()
        base = rows["packice get -> memoryview (zero-copy)"][0]
        base_read = rows["packice get -> memoryview, every byte read"][0]
        for name, (med, _) in rows.items():
            if name.startswith("packice"):
                continue
            against = base_read if "every byte" in name else base
            what = "with every byte read" if "every byte" in name else "time to a memoryview"
            print(f"- {name}: {med / against:.1f}x the time of Packice ({what})")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(scratch, ignore_errors=True)


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    sys.exit(main())
