"""Local mode's state folder (objects and items kept between runs) and the jobs a stop left unfinished."""

from __future__ import annotations

import fcntl
import os
import secrets
import sys
from pathlib import Path

from reelscope.access.roles import DEFAULT_CASE
from reelscope.errors import ReelscopeError
from reelscope.status import UNFINISHED, Status

INTERRUPTED = ("interrupted: local mode stopped while the job ran; run it again (the steps that had ended "
               "are reused) with `reelscope process VIDEO` or POST /jobs/{job_id}/runs")


def was_interrupted(job: dict) -> bool:
    """A job that local mode stopping (or a kill) left unfinished: running it again resumes it."""
    return job["status"] == Status.FAILED and job.get("error", "").startswith(INTERRUPTED.split(";")[0])


def interrupted(item: dict) -> dict:
    """A saved job or URL fetch item whose work died with its process: FAILED, and why (never left
    RUNNING or QUEUED)."""
    if item["SK"]["S"] == "JOB" and item["status"]["S"] in UNFINISHED:
        item = {**item, "status": {"S": Status.FAILED},
                "error": {"S": INTERRUPTED.format(job_id=item["job_id"]["S"])}}
    if item["SK"]["S"] == "FETCH" and item["status"]["S"] == Status.QUEUED:
        item = {**item, "status": {"S": Status.FAILED},
                "error": {"S": "interrupted: local mode stopped while the URL was fetched; POST /ingest again"}}
    return item


class StateFolder:
    """The state folder, owned by one process at a time: an exclusive lock (flock, released by
    the kernel when the process dies, even by kill -9) on its `lock` file, which names the owner."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = None

    def acquire(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / "lock", "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ReelscopeError(f"state folder {self.path} is in use by {owner}; stop it, or give this one "
                                 "another --state-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({' '.join(['reelscope', *sys.argv[1:]])[:200]})\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file:
            self._file.close()  # closing drops the lock; the file stays (unlinking it would race)
            self._file = None


def with_case(item: dict) -> dict:
    """A job item saved before jobs had cases: in the default case (and so in the ByCase index)."""
    if item.get("entity", {}).get("S") == "JOB" and "case_id" not in item:
        return {**item, "case_id": {"S": DEFAULT_CASE}}
    return item


OWNER_SECRET = "owner-secret"


def owner_secret(state_dir: Path) -> str:
    """The state folder's AWS secret key (made once, 0600): what local mode's own clients sign
    with, what the S3 endpoint checks presigned uploads (and, with users, every request) against."""
    path = Path(state_dir) / OWNER_SECRET
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.write_text(secrets.token_urlsafe(30))
        partial.chmod(0o600)
        os.replace(partial, path)
    return path.read_text().strip()
