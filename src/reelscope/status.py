"""Where a job, a step or a URL fetch stands. Stored in DynamoDB and shown as the plain string."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"  # a job some of whose steps failed: what succeeded is kept
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # a step after a failed one in its branch, or one that chose not to run (StepSkipped)

    def __str__(self) -> str:  # f-strings and messages show the value, not "Status.FAILED"
        return self.value


UNFINISHED = (Status.QUEUED, Status.RUNNING)
FINISHED = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED)
JOB_STATUSES = (Status.QUEUED.value, Status.RUNNING.value, *(s.value for s in FINISHED))
