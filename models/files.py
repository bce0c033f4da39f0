"""Files under data_dir (the database, logs, locks, caches): created readable and writable by their owner only."""
from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# For a child process whose files are made by code that is not ours (Scrapy's HTTP cache, its log).
PRIVATE_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """`path` as a folder, it and any missing parent created 0700 (a folder that exists is left as it is)."""
    path = Path(path)
    if not path.is_dir():
        if path.parent != path:
            private_dir(path.parent)
        try:
            path.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if not path.is_dir():
                raise
    return path


def private_opener(path: str | os.PathLike[str], flags: int) -> int:
    """For `open(path, mode, opener=private_opener)`: a file it creates is 0600 (one that exists keeps its mode)."""
    return os.open(path, flags, PRIVATE_FILE)
