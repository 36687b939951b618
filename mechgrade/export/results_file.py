"""results.json that is always there, valid and bounded, even on a full disk.

The space for every write is allocated before any student code runs (one preallocated file
per planned write); a write fills one of them and renames it over results.json, which needs
no new space. The text is cut, case by case, until it fits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_BYTES = 1 << 20  # Gradescope reads a results.json of this size easily; 45 cases x 4 KB fit well below


def bounded_json(data: dict, limit: int = MAX_BYTES) -> bytes:
    """``data`` as JSON of at most ``limit`` bytes: the tests' outputs are cut, longest first
    in effect (each to a shrinking share), until it fits."""
    text = json.dumps(data, indent=2).encode()
    share = limit // max(1, len(data.get("tests", [])) + 1)
    while len(text) > limit and share > 64:
        for test in data.get("tests", []):
            if len(test.get("output", "")) > share:
                test["output"] = test["output"][:share] + " [cut]"
        data["output"] = str(data.get("output", ""))[:share]
        text = json.dumps(data, indent=2).encode()
        share //= 2
    return text


class ReservedResults:
    def __init__(self, path: Path, writes: int = 2, size: int = MAX_BYTES):
        self.path, self.size = Path(path), size
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.spares: list[Path] = []
        for n in range(writes):
            spare = self.path.with_name(f".{self.path.name}.reserved{n}")
            spare.unlink(missing_ok=True)
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
            self.spares.append(spare)

    def write(self, data: dict) -> None:
        """Replace results.json with ``data`` (uses up one reservation)."""
        blob = bounded_json(data, self.size)
        spare = self.spares.pop(0)
        fd = os.open(spare, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            os.pwrite(fd, blob, 0)  # into blocks already allocated
            os.ftruncate(fd, len(blob))
            os.fsync(fd)
        finally:
            os.close(fd)
        spare.chmod(0o644)
        os.replace(spare, self.path)
