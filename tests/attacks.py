"""Pieces of hostile submissions shared by the security tests."""

from __future__ import annotations

import os
from pathlib import Path

# Student code: 5,000 nested folders in its working directory (its scratch space), made with
# relative mkdir so that no path it uses gets long.
DEEP_SCRATCH = """
import os as _os
_here = _os.open(".", _os.O_RDONLY)
for _ in range(5000):
    _os.mkdir("d", dir_fd=_here)
    _next = _os.open("d", _os.O_RDONLY, dir_fd=_here)
    _os.close(_here)
    _here = _next
_os.close(_here)
"""


def deep_tree(top: Path, depth: int = 5000) -> Path:
    """The same, made by a test (a submission that arrives with such a folder)."""
    top.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(top)
    try:
        exec(DEEP_SCRATCH.replace("5000", str(depth)), {})
    finally:
        os.chdir(cwd)
    return top
