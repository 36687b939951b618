"""Write a pure-Python wheel of mechgrade from a set of files.

Built by hand (a wheel is a zip with a ``.dist-info`` folder, PEP 427) so that an export needs
no build backend and works from an installed wheel as well as from a checkout. Metadata
(requirements, entry points) is copied from the installed distribution.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
from pathlib import Path

from mechgrade import __version__
from mechgrade.export.files import write_zip

NAME = "mechgrade"


def torch_version() -> str:
    """This machine's torch release (no local build tag such as +cpu): the one the answer keys
    are computed with, which setup.sh and a student bundle's INSTALL.md install."""
    return importlib.metadata.version("torch").split("+")[0]


def wheel_name() -> str:
    return f"{NAME}-{__version__}-py3-none-any.whl"


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(summary: str) -> str:
    installed = importlib.metadata.metadata(NAME)
    lines = ["Metadata-Version: 2.1", f"Name: {NAME}", f"Version: {__version__}", f"Summary: {summary}"]
    if installed.get("Requires-Python"):
        lines.append(f"Requires-Python: {installed['Requires-Python']}")
    lines += [f"Requires-Dist: {req}" for req in installed.get_all("Requires-Dist") or [] if "extra ==" not in req]
    return "\n".join(lines) + "\n"


def entry_points(lesson_id: str) -> str:
    """mechgrade's command and pytest plugin, and the one exported lesson (its plugin, wherever
    it was installed from, now travels inside this wheel)."""
    from mechgrade import lessons

    plugin = lessons.get(lesson_id)
    return ("[console_scripts]\nmechgrade = mechgrade.cli.main:main\n\n"
            f"[mechgrade.lessons]\n{plugin.id} = {plugin.entry_point}\n\n"
            "[pytest11]\nmechgrade = mechgrade.engine.plugin\n")


def write_wheel(directory: Path, files: dict[str, bytes], *, lesson: str, summary: str) -> Path:
    """``files``: {"mechgrade/...": bytes, and the lesson's own packages}; returns the wheel's
    path in ``directory``."""
    dist_info = f"{NAME}-{__version__}.dist-info"
    top_level = sorted({name.split("/")[0] for name in files if "/" in name})
    meta = {
        f"{dist_info}/METADATA": _metadata(summary).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: mechgrade-export\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": entry_points(lesson).encode(),
        f"{dist_info}/top_level.txt": "".join(f"{name}\n" for name in top_level).encode(),
    }
    everything = {**files, **meta}
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in sorted(everything.items()))
    everything[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    return write_zip(Path(directory) / wheel_name(), everything)
