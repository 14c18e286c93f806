"""Two Python processes share an object through a node with no copy: the writer fills the node's
shared memory through a writable memoryview, the reader maps the same pages read-only."""

from __future__ import annotations

import json
import subprocess
import sys

import packice

from conftest import run_python

# Process A: a 32 MiB float32 tensor written straight into the node's memory.
WRITER = r"""
import json, sys
import numpy as np
import packice
from mapping import mapping_of

client = packice.connect(sys.argv[1])
n = 8 << 20
with client.create("tensors/a", size=n * 4, meta={"dtype": "float32", "ttl": 600}) as obj:
    view = obj.buffer
    arr = np.frombuffer(view, dtype=np.float32)
    arr[:] = np.arange(n, dtype=np.float32)
    out = {
        "writable": not view.readonly and arr.flags.writeable,
        "shares": bool(np.shares_memory(arr, np.frombuffer(obj.buffer, np.uint8))),
        "mapping": mapping_of(arr.ctypes.data),
    }
    del arr, view  # no views may outlive the seal
    out["info"] = obj.seal().__dict__
print(json.dumps(out))
"""

# Process B: maps it, checks it is the same memory, read-only, and holds it while the key is
# rebound by someone else.
READER = r"""
import json, sys
import numpy as np
import packice
from mapping import mapping_of

client = packice.connect(sys.argv[1])
out = {}
with client.get("tensors/a") as obj:
    view = obj.buffer
    arr = np.frombuffer(view, dtype=np.float32)
    out["readonly"] = view.readonly and not arr.flags.writeable
    try:
        arr[0] = 1.0
        out["numpy_write"] = "allowed"
    except ValueError as e:
        out["numpy_write"] = str(e)
    try:
        view[0] = 1
        out["view_write"] = "allowed"
    except TypeError as e:
        out["view_write"] = str(e)
    out["base_is_view"] = isinstance(arr.base, memoryview)
    out["shares"] = bool(np.shares_memory(arr, np.asarray(obj.buffer)))
    out["mapping"] = mapping_of(arr.ctypes.data)
    out["meta"] = obj.meta
    out["correct"] = bool((arr == np.arange(arr.size, dtype=np.float32)).all())
print(json.dumps(out), flush=True)
sys.stdin.readline()  # the parent rebinds the key meanwhile
out2 = {"still": bool((arr == np.arange(arr.size, dtype=np.float32)).all())}
with client.get("tensors/a") as new:
    out2["new_first"] = np.frombuffer(new.buffer, dtype=np.float32)[0].item()
print(json.dumps(out2), flush=True)
"""

# Finds the /proc/self/maps line that holds an address.
MAPPING = r"""
def mapping_of(addr):
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= addr < hi:
                return {"perms": fields[1], "path": " ".join(fields[5:])}
    return None
"""


def test_two_processes_share_an_object_zero_copy(node, tmp_path):
    (tmp_path / "mapping.py").write_text(MAPPING)
    env_path = f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"

    a = json.loads(run_python(env_path + WRITER, node.url).stdout)
    assert a["writable"] and a["shares"]
    # The writer's bytes are a shared, writable mapping of the node's memfd segment.
    assert a["mapping"]["perms"] == "rw-s" and "memfd:" in a["mapping"]["path"]
    assert a["info"]["size"] == 32 << 20 and a["info"]["meta"] == {"dtype": "float32"}

    b = subprocess.Popen(
        [sys.executable, "-c", env_path + READER, node.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(b.stdout.readline())
        assert first["correct"] and first["readonly"] and first["shares"] and first["base_is_view"]
        assert "read-only" in first["numpy_write"]
        assert "read-only" in first["view_write"] or "readonly" in first["view_write"]
        assert first["meta"] == {"dtype": "float32"}
        # The reader's bytes are the same segment mapped read-only and shared: not a copy, and
        # no write can reach it even below Python.
        assert first["mapping"]["perms"] == "r--s" and "memfd:" in first["mapping"]["path"]

        # Rebind the key while B still holds its array: B keeps the sealed bytes it mapped.
        c = packice.connect(node.url)
        c.delete("tensors/a")
        import numpy as np

        c.put("tensors/a", np.full(1 << 18, 7.0, dtype=np.float32))
        b.stdin.write("\n")
        b.stdin.flush()
        second = json.loads(b.stdout.readline())
        assert second == {"still": True, "new_first": 7.0}
    finally:
        b.stdin.close()
        assert b.wait(30) == 0
        b.stdout.close()


def test_many_readers_in_parallel_processes(node):
    c = packice.connect(node.url)
    c.put("blob", bytes(range(256)) * 65536)  # 16 MiB
    code = r"""
import sys, hashlib, packice
c = packice.connect(sys.argv[1])
with c.get("blob") as o:
    print(hashlib.sha256(o.buffer).hexdigest())
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", code, node.url], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    import hashlib

    want = hashlib.sha256(bytes(range(256)) * 65536).hexdigest()
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip() == want
