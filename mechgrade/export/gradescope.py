"""`mechgrade export gradescope`: a zip Gradescope runs as its autograder.

Zip root (= /autograder/source on Gradescope)::

    setup.sh, run_autograder        rendered from templates/ (read them: they are short)
    autograder.json                 lesson, model, hidden-case visibility, memory limit, user
    wheels/mechgrade-*.whl          what the student's code may read: no reference, no hidden
                                    cases, no keys (installed into /autograder/runtime)
    trusted/mechgrade/...           the full package (root only, on PYTHONPATH of the grader)
    cache/keys/<lesson>/*.safetensors   the answer key with hidden cases, when computable now (and
                                        its manifest of hashes, so that setup.sh believes it)
    model/...                       a local model directory given as --model DIR

For the embedded model the key is computed here; for any other model setup.sh computes it
at image-build time, after fetching the weights.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel

from mechgrade import __version__, lessons
from mechgrade.engine.key import AnswerKey
from mechgrade.engine.results import GradescopeVisibility
from mechgrade.export.autograder import CONFIG, KILL_S, RESERVE_S, AutograderConfig
from mechgrade.export.container import recommended_mb
from mechgrade.export.files import INSTRUCTOR, WORKER, package_files, write_zip
from mechgrade.errors import MechgradeError
from mechgrade.export.wheel import torch_version, wheel_name, write_wheel
from mechgrade.models.spec import resolve
from mechgrade.spec import load_lesson, require_reference

# Address space the student's code may add to the worker (RLIMIT_AS above its booted size), at
# most: run_autograder cuts it down to what the container has room for (export.container).
EMBEDDED_MEM_MB = 256
LARGE_MEM_MB = 2048
TIME_LIMIT_MIN = 10  # Gradescope's default autograder timeout


class GradescopeExport(BaseModel):
    path: Path
    model: str
    key_cases: int
    time_limit_s: int
    grading_s: int  # when grading stops (results.json is written after)
    mem_mb: int
    container_mb: int  # the container memory to set for this model (measured; see export.container)


def export_gradescope(lesson_id: str, out: Path, *, model: str = "embedded",
                      hidden_visibility: GradescopeVisibility = "after_published", mem_mb: int | None = None,
                      user: str = "mechgrade-student", time_limit_min: float = TIME_LIMIT_MIN) -> GradescopeExport:
    """``time_limit_min``: the assignment's autograder timeout (keep them equal); grading stops
    ``RESERVE_S`` before it, and cases not reached by then are reported as not run."""
    lesson = load_lesson(lesson_id)
    require_reference(lesson_id, "Exporting a Gradescope autograder")
    if time_limit_min * 60 < 2 * RESERVE_S:
        raise MechgradeError(f"--time-limit-min {time_limit_min:g} leaves no time to grade (grading stops {RESERVE_S} s before "
                             "the limit); use the assignment's timeout, at least 2 minutes.")
    local = model == "embedded" or Path(model).expanduser().exists() or model.startswith((".", "/", "~"))
    source = resolve(model, allow_download=False) if local else None  # a hub model is fetched by setup.sh
    files: dict[str, bytes] = {}
    key_cases = 0
    if source is not None:  # the key is computed here, for the exact bytes the zip carries
        key = AnswerKey(lesson, model)
        key.fill(lesson.iter_cases(hidden=True))
        files.update({f"cache/keys/{lesson.id}/{name}": data for name, data in key.cache_files().items()})
        key_cases = len(key.entries)
    if source is not None and source.kind == "path":
        for path in sorted(Path(source.directory).iterdir()):
            if path.is_file():
                files[f"model/{path.name}"] = path.read_bytes()
    embedded = source is not None and source.kind == "embedded"
    config = AutograderConfig(lesson=lesson.id, model="zip" if source is not None and source.kind == "path" else model,
                              hidden_visibility=hidden_visibility, mem_mb=mem_mb or (EMBEDDED_MEM_MB if embedded else LARGE_MEM_MB),
                              time_limit_s=round(time_limit_min * 60), user=user, version=__version__)
    files[CONFIG] = config.model_dump_json(indent=2).encode()
    for name, data in package_files(lesson, INSTRUCTOR).items():
        files[f"trusted/{name}"] = data
    with tempfile.TemporaryDirectory() as tmp:
        wheel = write_wheel(Path(tmp), package_files(lesson, WORKER), lesson=lesson.id, summary=f"mechgrade runtime for {lesson.id} (student-readable)")
        files[f"wheels/{wheel_name()}"] = wheel.read_bytes()
    env = Environment(loader=PackageLoader("mechgrade.export", "templates"), undefined=StrictUndefined, keep_trailing_newline=True)
    values = dict(lesson=lesson.id, model=model, version=__version__, user=user, torch=torch_version(), wheel=wheel_name(),
                  time_limit_s=config.time_limit_s, reserve_s=RESERVE_S, kill_s=KILL_S)
    files["setup.sh"] = env.get_template("setup.sh.j2").render(values).encode()
    files["run_autograder"] = env.get_template("run_autograder.j2").render(values).encode()
    write_zip(Path(out), files, executable={"setup.sh", "run_autograder"})
    return GradescopeExport(path=Path(out), model=model, key_cases=key_cases, time_limit_s=config.time_limit_s,
                            grading_s=config.time_limit_s - RESERVE_S, mem_mb=config.mem_mb,
                            container_mb=recommended_mb(config.model, lessons.get(lesson.id).peak_mb))
