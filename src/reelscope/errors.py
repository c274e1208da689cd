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


class StageFailed(ReelscopeError):
    """A tool (ffmpeg, a model) failed on input that passed validation."""


class NotFound(ReelscopeError):
    """The job, share link or fetch asked for does not exist."""
