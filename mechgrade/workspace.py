"""Student workspaces: the lesson's stub modules plus a README of rendered instructions, or the
same as one Jupyter notebook."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


from mechgrade import lessons
from mechgrade.errors import WorkspaceError
from mechgrade.spec import Lesson, require_reference
from mechgrade.workspace_kind import Workspace


def _is_lesson_notebook(path: Path, lesson_id: str) -> bool:
    """A notebook written by ``mechgrade start LESSON --notebook`` (its check cells name the lesson)."""
    if path.name == f"{lesson_id}.ipynb":
        return True
    try:
        return f"check({lesson_id!r}" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def lesson_notebooks(folder: Path, lesson_id: str) -> list[Path]:
    """The lesson's notebooks directly in ``folder``, by name."""
    try:
        candidates = sorted(p for p in Path(folder).glob("*.ipynb") if p.is_file())
    except OSError:
        return []
    return [p for p in candidates if _is_lesson_notebook(p, lesson_id)]


def is_lesson_folder(folder: Path, lesson: Lesson) -> bool:
    """True for a folder workspace of ``lesson``: one of its modules is there, and its README is
    the lesson's or most of its modules are there (a folder with a stray hooks.py is not one)."""
    folder = Path(folder)
    present = [e.id for e in lesson.exercises if (folder / f"{e.id}.py").is_file()]
    if not present:
        return False
    readme = folder / "README.md"
    try:
        ours = readme.is_file() and f"({lesson.id})" in readme.read_text(encoding="utf-8", errors="replace")[:500]
    except OSError:
        ours = False
    return ours or 2 * len(present) >= len(lesson.exercises)


def find_workspace(lesson: Lesson, cwd: Path | None = None) -> Path:
    """The workspace ``check`` grades when no --path is given: ./LESSON if it is there, else the
    current folder if it is a workspace of the lesson, else the one lesson notebook in it.
    Raises ``WorkspaceError`` saying what to pass instead."""
    cwd = Path(cwd or ".")
    default = cwd / lesson.id
    if default.is_dir():
        return Path(lesson.id) if cwd == Path(".") else default
    if is_lesson_folder(cwd, lesson):
        return cwd
    notebooks = lesson_notebooks(cwd, lesson.id)
    if len(notebooks) == 1:
        return notebooks[0] if cwd != Path(".") else Path(notebooks[0].name)
    raise missing_workspace(lesson.id, Path(lesson.id) if cwd == Path(".") else default, given=False)


def missing_workspace(lesson_id: str, path: Path, *, given: bool = True) -> WorkspaceError:
    """The one sentence for a --path (``given``) or the default that is no workspace: pointing at
    a notebook of the lesson when there is one beside it."""
    notebooks = lesson_notebooks(Path(path).parent, lesson_id) if Path(path).parent.is_dir() else []
    if notebooks:
        names = " or ".join(f"`--path {nb.name if Path(path).parent == Path('.') else nb}`" for nb in notebooks[:3])
        return WorkspaceError(f"No workspace at {path}; to grade your notebook, pass {names}.")
    if given:
        return WorkspaceError(f"No workspace at {path}: create one with `mechgrade start {lesson_id} {path}`.")
    return WorkspaceError(f"No workspace at {path}: create one with `mechgrade start {lesson_id}`, "
                          "or pass --path to the workspace you have.")


def empty_workspace(lesson: Lesson, folder: Path) -> WorkspaceError | None:
    """For ``check --path``: one sentence for a folder holding none of the lesson's modules (not
    eight "X.py is missing" blocks), else None."""
    if any((Path(folder) / f"{e.id}.py").is_file() for e in lesson.exercises):
        return None
    return WorkspaceError(f"{folder} holds none of {lesson.id}'s modules ({', '.join(f'{e.id}.py' for e in lesson.exercises)}): "
                          f"create them with `mechgrade start {lesson.id} {folder} --force`, or pass --path to your workspace.")


def module_sources(lesson: Lesson, *, solutions: bool = False) -> dict[str, str]:
    """{"hooks.py": source, ...} from the stubs (or, for instructors, the reference)."""
    if solutions:
        require_reference(lesson.id, "--solutions")
    plugin = lessons.get(lesson.id)
    root = plugin.reference_dir() if solutions else plugin.stubs_dir()
    return {f"{e.id}.py": (root / f"{e.id}.py").read_text(encoding="utf-8") for e in lesson.exercises}


def model_facts(model_spec: str) -> dict:
    """What the instructions say about the model, from its config alone (no torch import)."""
    import json

    from mechgrade.errors import ModelUnavailable
    from mechgrade.models.spec import resolve

    try:  # instructions can be written before the weights are downloaded
        source = resolve(model_spec, allow_download=False)
    except ModelUnavailable:
        source = None
    facts = {"spec": model_spec, "n_layers": "?", "n_heads": "?", "d_model": "?", "d_vocab": "?"}
    if source is not None and source.directory is not None:
        cfg = json.loads((source.directory / "config.json").read_text())
        facts.update(n_layers=cfg.get("n_layer"), n_heads=cfg.get("n_head"), d_model=cfg.get("n_embd"), d_vocab=cfg.get("vocab_size"))
    return facts


def render_instructions(lesson: Lesson, model_spec: str = "embedded", template: str = "README.md.j2", **context) -> str:
    """A lesson template rendered with ``lesson`` and ``model`` (and ``context``), as every
    template sees them: an exercise's section also sees its ``exercise``, whether it is included
    from the README (a loop variable) or rendered on its own for a notebook (``render_section``)."""
    environment = lessons.get(lesson.id).templates(keep_trailing_newline=True)
    return environment.get_template(template).render(lesson=lesson, model=model_facts(model_spec), **context)


def render_section(lesson: Lesson, model_spec: str, exercise: str) -> str:
    return render_instructions(lesson, model_spec, f"{exercise}.md.j2", exercise=lesson.exercise(exercise))


def _write_keeping_backup(path: Path, text: str, stamp: str) -> Path | None:
    """Write ``path``; an existing file is first renamed to ``NAME.bak-<stamp>``, which is returned."""
    backup = None
    if path.exists():
        backup = path.rename(path.with_name(f"{path.name}.bak-{stamp}"))
    path.write_text(text, encoding="utf-8")
    return backup


@dataclass
class Created:
    written: list[Path]
    kept: list[Path]  # the .bak copies of files that --force replaced


def create_workspace(lesson: Lesson, directory: Path, *, solutions: bool = False, force: bool = False,
                     model_spec: str = "embedded") -> Created:
    """Write the workspace; refuse a non-empty directory unless ``force``. Never deletes: with
    ``force``, a file that would be overwritten is first renamed to ``NAME.bak-<time>``."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise WorkspaceError(f"{directory} exists and is not a directory.")
    if directory.exists() and any(directory.iterdir()) and not force:
        raise WorkspaceError(f"{directory} is not empty; choose another directory, or pass --force (existing files are kept as .bak copies).")
    directory.mkdir(parents=True, exist_ok=True)
    files = dict(module_sources(lesson, solutions=solutions))
    files["README.md"] = render_instructions(lesson, model_spec)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    created = Created([], [])
    for name, text in files.items():
        backup = _write_keeping_backup(directory / name, text, stamp)
        created.written.append(directory / name)
        created.kept += [backup] if backup else []
    return created


def create_notebook(lesson: Lesson, path: Path, *, solutions: bool = False, force: bool = False,
                    model_spec: str = "embedded") -> Path:
    """Write the workspace as one notebook (instructions as markdown, stubs as code cells); refuse
    an existing file unless ``force``, which keeps it as ``NAME.bak-<time>``."""
    import json

    from mechgrade.notebook import build_notebook

    path = Path(path)
    if not Workspace.at(path).is_notebook:
        raise WorkspaceError(f"A notebook's name must end in .ipynb, not {path.name}.")
    if path.exists() and not force:
        raise WorkspaceError(f"{path} exists; choose another name, or pass --force (the old file is kept as a .bak copy).")
    sections = {e.id: render_section(lesson, model_spec, e.id) for e in lesson.exercises}
    notebook = build_notebook(lesson, sources=module_sources(lesson, solutions=solutions), sections=sections,
                              intro=render_instructions(lesson, model_spec, "notebook.md.j2"), model_spec=model_spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_keeping_backup(path, json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", time.strftime("%Y%m%d-%H%M%S"))
    return path
