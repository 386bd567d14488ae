"""Where the course finds its files: the repository root and the shipped `data/` folder."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The repository checkout that holds this package (``course/..``)."""
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The folder of shipped data and checkpoints: ``$COURSE_DATA_DIR`` if set, else ``<repo>/data`` in a
    checkout, else ``course/data`` inside an installed wheel (``python -m course.wheel``)."""
    override = os.environ.get("COURSE_DATA_DIR")
    if override:
        return Path(override)
    packaged = Path(__file__).resolve().parent / "data"
    return packaged if packaged.is_dir() and not (repo_root() / "data").is_dir() else repo_root() / "data"
