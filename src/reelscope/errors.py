"""Errors a user can act on. Each names the thing at fault and the reason."""

from __future__ import annotations

from pathlib import Path


class ReelscopeError(Exception):
    """Base class: a failure with a message fit to show a user (no stack trace needed)."""


class InvalidMedia(ReelscopeError):
    """The input file cannot be processed: empty, not media, no video, corrupt, too long..."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{Path(path).name}: {reason}")


class ModelUnavailable(ReelscopeError):
    """Model weights cannot be had; the message says how to provide them."""


class StepSkipped(ReelscopeError):
    """A step that decided not to run on this input or with these models; the message says why.
    Recorded SKIPPED with that reason: the job is not the worse for it."""


class StageFailed(ReelscopeError):
    """A tool (ffmpeg, a model) failed on input that passed validation."""


class NotFound(ReelscopeError):
    """The job, share link or fetch asked for does not exist."""


class FetchRefused(ReelscopeError):
    """A URL to ingest, an address it resolves to, or its response is refused; the message says why."""


class BadNames(ReelscopeError):
    """Names for speakers that the job does not have, or that cannot be stored."""


class BadQuery(ReelscopeError):
    """A search that cannot be run as asked (no searchable words, too many, a bad filter or
    cursor); `field` names the parameter at fault."""

    def __init__(self, message: str, field: str = "q"):
        super().__init__(message)
        self.field = field


def error_message(err: Exception) -> str:
    """What a user is told of a failure: our own errors as they are, anything else as an internal error."""
    return str(err) if isinstance(err, ReelscopeError) else f"internal error: {type(err).__name__}: {err}"
