"""reelscope: turn raw video into structured, searchable data."""

__version__ = "0.1.0"
