"""The C heap: threads that allocate at once share the arenas instead of taking one each, and
what was freed goes back to the system."""

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


# A thread frees 256 MiB of 64 KiB blocks but the last (so the arena cannot shrink from its top).
FREED = """
import ctypes, sys, threading, time
from reelscope import heap
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
def allocate_and_free():
    blocks = [libc.malloc(64 << 10) for _ in range(4096)]
    for block in blocks:
        ctypes.memset(block, 1, 64 << 10)
    for block in blocks[:-1]:
        libc.free(ctypes.c_void_p(block))
before = rss()
worker = threading.Thread(target=allocate_and_free)
worker.start(); worker.join()
held = rss() - before
if sys.argv[1] == "trimmed":
    assert heap.trim_periodically(0.05) and not heap.trim_periodically(0.05)  # one thread a process
    time.sleep(0.5)
print(held, rss() - before)
"""


def freed(mode: str) -> tuple[int, int]:
    """(MiB resident after the frees, MiB resident at the end), above the start."""
    env = {"PATH": "/usr/bin:/bin"}
    held, kept = subprocess.run([sys.executable, "-c", FREED, mode], env=env, capture_output=True, text=True,
                                check=True).stdout.split()
    return int(held), int(kept)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_pages_below_a_live_block_go_back_when_trimmed():
    held, kept = freed("untrimmed")
    assert held >= 200 and kept >= 200  # freed, still resident
    held, kept = freed("trimmed")
    assert held >= 200 and kept <= 20
