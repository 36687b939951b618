"""`mechgrade export student`: the starter bundle a course hands out instead of the package.

The zip holds a wheel of mechgrade without the reference solutions and hidden cases, with the
public cases' expected outputs as data (the answer keys of every model this machine has a key
for), and a ready workspace (stubs + rendered instructions). Installing the wheel gives a
working ``mechgrade start`` / ``mechgrade check`` for the public cases.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel

from mechgrade.engine.key import FROZEN_SOURCE, cache_root, key_label, source_fingerprint
from mechgrade.export.files import STUDENT, data_arcname, package_files, public_key, write_zip
from mechgrade.export.wheel import torch_version, wheel_name, write_wheel
from mechgrade.spec import load_lesson, require_reference
from mechgrade.workspace import module_sources, render_instructions

INSTALL = """# {title} ({lesson}): starter bundle

1. Install (Python 3.10+; the CPU build of PyTorch first keeps the download small, and the
   version your instructor's answer keys were computed with keeps your numbers next to theirs):

       python3 -m venv .venv && . .venv/bin/activate
       pip install torch=={torch} --index-url https://download.pytorch.org/whl/cpu
       pip install {wheel}

   Offline, or where your course has a local mirror: pip would spend minutes retrying the
   network first. Tell it where the wheels are instead: a folder (`DIR`) holding the wheels of
   torch and of mechgrade's dependencies, or your mirror's index (`URL`):

       pip install --no-index --find-links DIR torch=={torch} {wheel}
       pip install --index-url URL torch=={torch} && pip install --index-url URL {wheel}

   (`pip config set global.find-links DIR` makes every later pip command look there first.)

2. Work in `{lesson}/`: read `{lesson}/README.md`, fill in the TODOs.
3. Check your work, as often as you like: `mechgrade check {lesson}` (from this folder).

`mechgrade check` grades the public cases here, offline; your course grades the hidden ones.
This bundle has no reference solutions: `--solutions`, `validate` and `--hidden` are for instructors.
"""


class StudentBundle(BaseModel):
    path: Path
    wheel: str
    models: list[str]
    files: int


def _public_keys(lesson) -> dict[str, bytes]:
    """Keys for this lesson's sources from the instructor's cache (e.g. GPT-2), public entries only."""
    source = source_fingerprint(lesson.id)
    folder = cache_root() / "keys" / lesson.id
    return {data_arcname(lesson.id, f"keys/{p.name}"): public_key(p.read_bytes(), lesson)
            for p in sorted(folder.glob(f"*-{source}.safetensors"))} if folder.is_dir() else {}


def export_student(lesson_id: str, out: Path) -> StudentBundle:
    lesson = load_lesson(lesson_id)
    require_reference(lesson_id, "Exporting a student bundle")  # the bundle's keys are tied to the full lesson
    files = package_files(lesson, STUDENT)
    keys_dir = data_arcname(lesson.id, "keys/")
    for name, data in _public_keys(lesson).items():
        files.setdefault(name, data)  # a shipped key wins over a cached copy of it
    files[keys_dir + FROZEN_SOURCE] = (source_fingerprint(lesson.id) + "\n").encode()
    models = sorted(key_label(n[len(keys_dir):]) for n in files if n.startswith(keys_dir) and n.endswith(".safetensors"))
    with tempfile.TemporaryDirectory() as tmp:
        wheel = write_wheel(Path(tmp), files, lesson=lesson.id, summary=f"mechgrade student bundle for {lesson.id} (no reference, no hidden cases)")
        bundle = {wheel_name(): wheel.read_bytes()}
    for name, text in module_sources(lesson).items():
        bundle[f"{lesson.id}/{name}"] = text.encode()
    bundle[f"{lesson.id}/README.md"] = render_instructions(lesson).encode()
    bundle["INSTALL.md"] = INSTALL.format(title=lesson.title, lesson=lesson.id, wheel=wheel_name(), torch=torch_version()).encode()
    write_zip(Path(out), bundle)
    return StudentBundle(path=Path(out), wheel=wheel_name(), models=models, files=len(files))
