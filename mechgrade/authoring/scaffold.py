"""``mechgrade new lesson NAME [DIR]``: a lesson package that validates out of the box.

The package is written from ``skeleton/`` (every file there ends in ``.tmpl``, so none of it is
importable or collected as mechgrade's own code): ``__lesson__`` in a path or a file becomes
the lesson's id, which is also its import package. Its stubs are then generated from its
reference, as an author regenerates them (``mechgrade new stubs``).
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from mechgrade import __version__, lessons
from mechgrade.authoring.stubs import write_stubs
from mechgrade.errors import AuthoringError

SKELETON = Path(__file__).parent / "skeleton"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class NewLesson:
    root: Path
    package: Path
    files: tuple[Path, ...]


def check_name(name: str) -> None:
    """The id must be usable as `mechgrade check NAME`, as an import package and as a
    distribution name, and must not shadow anything importable here (``torch``, ``lesson27``)."""
    if not NAME.match(name) or keyword.iskeyword(name):
        raise AuthoringError(f"'{name}' cannot be a lesson's name: use lower-case letters, digits and underscores, "
                             "starting with a letter (it is also the lesson's Python package), e.g. lesson28.")
    if name in lessons.installed():
        raise AuthoringError(f"A lesson named '{name}' is already installed (from {lessons.get(name).origin}); choose another name.")
    try:
        taken = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        taken = True
    if taken:
        raise AuthoringError(f"A Python module named '{name}' is already importable here; choose another name for the "
                             "lesson (its package would shadow it, or be shadowed).")


def new_lesson(name: str, directory: Path, title: str = "") -> NewLesson:
    """Write the package into ``directory`` (absent or empty)."""
    check_name(name)
    if "\n" in title or len(title) > 200:
        raise AuthoringError("A lesson's title is one line of at most 200 characters.")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AuthoringError(f"{directory} already exists and is not an empty folder; give another DIR.")
    values = {"__lesson__": name, "__dist__": f"mechgrade-{name.replace('_', '-')}",
              "__title__": title or f"Lesson {name}", "__mechgrade_version__": __version__}
    written = []
    for template in sorted(SKELETON.rglob("*.tmpl")):
        rel = template.relative_to(SKELETON).as_posix().removesuffix(".tmpl").replace("__lesson__", name)
        text = template.read_text(encoding="utf-8")
        for token, value in values.items():
            # Inside a TOML or Python string: JSON's escapes are valid in both.
            text = text.replace(token, value if rel.endswith(".md") else json.dumps(value)[1:-1])
        out = directory / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    package = directory / name
    written += write_stubs(package / "reference", package / "stubs")
    return NewLesson(root=directory, package=package, files=tuple(written))
