"""The arena limit: threads that allocate at once share the arenas instead of taking one each."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

# Eight threads alive together, each allocating a block that bypasses Python's small-object
# allocator; then glibc's own report of its heaps (malloc_info), whose <heap nr=N> are the arenas.
THREADS = """
import ctypes, sys, tempfile, threading
from reelscope import heap
if sys.argv[1] == "limited":
    assert heap.share_arenas(2)
held, everyone = [], threading.Barrier(8)
def allocate():
    held.append(bytearray(64 << 10))
    everyone.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(report.name).read())
"""


def arenas(mode: str) -> int:
    env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_ARENA_MAX from the caller
    report = subprocess.run([sys.executable, "-c", THREADS, mode], env=env, capture_output=True, text=True, check=True).stdout
    return len(re.findall(r'<heap nr="\d+">', report))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas")
def test_threads_allocating_at_once_share_two_arenas():
    assert arenas("default") > 2  # what the limit is there for: an arena per thread
    assert arenas("limited") == 2
