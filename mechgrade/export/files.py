"""The installed mechgrade package as files, filtered by who will hold them.

An export never builds from a source checkout: it reads the files of the package that is
importable now (editable install or wheel), so instructors can export from either. What a
student may hold is decided here, in one place: no reference, no hidden cases, the mutant
catalogue's hints without its reference snippets, and (for the Gradescope runtime) no keys.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from mechgrade import lessons
from mechgrade.engine.codec import encode, from_bytes, to_bytes
from mechgrade.lessons import LessonPlugin
from mechgrade.spec import Lesson

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# mechgrade's own packages; the folders that hold lesson 27's parts (an export carries only
# what the exported lesson's plugin names in them); and the authoring kit, for instructors only.
ENGINE = ("mechgrade", "mechgrade.cli")
CONTAINERS = ("mechgrade.exercises", "mechgrade.graders", "mechgrade.reference", "mechgrade.student_template")
AUTHORING = "mechgrade.authoring"


@dataclass(frozen=True)
class Audience:
    """What one kind of holder may see."""

    reference: bool  # reference solutions and the mutant catalogue's snippets
    hidden: bool     # hidden cases in the spec and in keys
    keys: bool       # answer keys (expected outputs)
    graders: bool    # the pytest graders (the worker needs none: it only builds inputs and runs code)


INSTRUCTOR = Audience(reference=True, hidden=True, keys=True, graders=True)
STUDENT = Audience(reference=False, hidden=False, keys=True, graders=True)    # starter bundle: grades public cases locally
WORKER = Audience(reference=False, hidden=False, keys=False, graders=False)   # Gradescope runtime the student's code can read


def _files_under(name: str, *, recursive: bool = True) -> dict[str, Path]:
    """{"pkg/sub/file.py": path} for the importable package or module ``name`` (none if absent)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return {}
    prefix = name.replace(".", "/")
    if not spec.submodule_search_locations:  # a plain module
        return {f"{prefix}.py": Path(spec.origin)} if spec.origin and Path(spec.origin).is_file() else {}
    files: dict[str, Path] = {}
    for location in spec.submodule_search_locations:
        root = Path(location)
        for path in sorted(root.rglob("*") if recursive else root.iterdir()):
            rel = path.relative_to(root)
            if path.is_file() and not path.is_symlink() and path.suffix != ".pyc" \
                    and not any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
                files.setdefault(f"{prefix}/{rel.as_posix()}", path)
    return files


def lesson_parts(plugin: LessonPlugin, audience: Audience) -> tuple[list[str], list[str]]:
    """(import names this audience gets, import names it must not get) of one lesson."""
    parts = [plugin.data, plugin.stubs, *([plugin.extras] if plugin.extras else [])]
    withheld = []
    for name, allowed in ((plugin.reference, audience.reference), (plugin.checks, audience.graders)):
        if name:
            (parts if allowed else withheld).append(name)
    return parts, withheld


def installed_files(lesson: Lesson, audience: Audience) -> dict[str, Path]:
    """{"mechgrade/engine/runner.py": path, ...}: the engine, and the parts of ``lesson`` that
    ``audience`` may hold, wherever its plugin's packages are installed."""
    plugin = lessons.get(lesson.id)
    files: dict[str, Path] = {}
    # Installed from a wheel, the folders holding lesson 27's parts lie inside mechgrade's own:
    # only what the exported lesson's plugin names below may come from them (with the
    # __init__.py of each package above a part).
    left_out = CONTAINERS + (() if audience.reference else (AUTHORING,))
    prefixes = tuple(name.replace(".", "/") + "/" for name in left_out)
    for name in ENGINE:
        files.update({arc: path for arc, path in _files_under(name).items() if not arc.startswith(prefixes)})
    parts, withheld = lesson_parts(plugin, audience)
    for name in parts:
        for above in _parents(name):  # the packages a part is imported through
            files.update({k: v for k, v in _files_under(above, recursive=False).items() if k.endswith("/__init__.py")})
        files.update(_files_under(name))
    secret = [name.replace(".", "/") for name in withheld]
    return {arc: path for arc, path in files.items()
            if not any(arc == f"{s}.py" or arc.startswith(f"{s}/") for s in secret)}


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def package_files(lesson: Lesson, audience: Audience) -> dict[str, bytes]:
    """The package for ``audience``, with only ``lesson``'s parts, as {arcname: bytes}."""
    data_prefix = lessons.get(lesson.id).data.replace(".", "/") + "/"
    out: dict[str, bytes] = {}
    for arcname, path in installed_files(lesson, audience).items():
        data = _filtered(arcname, path.read_bytes(), lesson, audience, data_prefix)
        if data is not None:
            out[arcname] = data
    return out


def data_arcname(lesson_id: str, name: str) -> str:
    """Where ``name`` (e.g. 'keys/x.safetensors') of the lesson's data package lies in an export."""
    return lessons.get(lesson_id).data.replace(".", "/") + "/" + name


def _filtered(arcname: str, data: bytes, lesson: Lesson, audience: Audience, lesson_prefix: str) -> bytes | None:
    if not arcname.startswith(lesson_prefix):
        return data
    name = arcname[len(lesson_prefix):]
    if name.startswith("keys/"):
        if not audience.keys:
            return None
        return data if audience.hidden or not name.endswith(".safetensors") else public_key(data, lesson)
    if name == "lesson.toml" and not audience.hidden:
        return public_spec(data.decode(), lesson).encode()
    if name == "mutants.toml" and not audience.reference:
        return hints_only(data.decode()).encode()
    return data


def public_numbers(lesson: Lesson) -> set[str]:
    return {case.number for _, _, case in lesson.iter_cases(hidden=False)}


def public_key(data: bytes, lesson: Lesson) -> bytes:
    """A key file reduced to the public cases' entries (its provenance kept)."""
    keep = public_numbers(lesson)
    value, provenance = from_bytes(data, with_provenance=True)
    entries = {k: v for k, v in value.items() if k in keep}
    return to_bytes(*encode(entries), provenance=provenance)


def public_spec(text: str, lesson: Lesson) -> str:
    """lesson.toml without hidden cases. Hidden cases follow the public ones of each function,
    so public case numbers (which index the keys) do not move; checked here, not assumed."""
    from mechgrade.spec import Lesson as LessonModel

    data = tomllib.loads(text)
    data["hidden_points"] = {}  # what `check` says the instructor still grades
    for exercise in data["exercises"]:
        for function in exercise["functions"]:
            hidden = sum(c["points"] for c in function["cases"] if c.get("visibility", "public") == "hidden")
            if hidden:
                data["hidden_points"][f"{exercise['id']}.{function['name']}"] = hidden
            function["cases"] = [c for c in function["cases"] if c.get("visibility", "public") == "public"]
    stripped = toml_dumps(data)
    numbers = {c.number for _, _, c in LessonModel.model_validate(tomllib.loads(stripped)).iter_cases(hidden=True)}
    if numbers != public_numbers(lesson):
        raise ValueError(f"{lesson.id}: dropping hidden cases renumbers public ones; list hidden cases after public ones")
    return "# Public cases only: exported for students by `mechgrade export`.\n" + stripped


def hints_only(text: str) -> str:
    """mutants.toml with each mutant's name, functions and hint, but not its reference snippets."""
    data = tomllib.loads(text)
    for mutant in data.get("mutants", []):
        mutant.pop("old", None)
        mutant.pop("new", None)
    return "# Hints only: exported for students by `mechgrade export`.\n" + toml_dumps(data)


def toml_dumps(data: dict) -> str:
    """TOML for plain data, one top-level key per line (inline tables and arrays below it)."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in data.items())


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def write_zip(path: Path, files: dict[str, bytes], *, executable: set[str] = frozenset()) -> Path:
    """A zip with stable order and permissions (``executable`` entries get mode 755)."""
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            zf.writestr(info, files[name])
    path.write_bytes(buf.getvalue())
    return path
