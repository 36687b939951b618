"""Jupyter notebooks as workspaces, on the trusted side: read an .ipynb's code cells (standard
library JSON; nothing is executed here), decide which cells are graded, and write a lesson as one
notebook for ``mechgrade start --notebook``.

The cells are executed only by the student worker (``mechgrade.engine.nbexec``). Torch-free.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from mechgrade.errors import WorkspaceError

SKIP_TAG = "skip-grading"
SKIP_COMMENT = re.compile(r"#\s*mechgrade:\s*skip\b", re.IGNORECASE)
# Cell magics whose body is Python (the magic only times or captures it); any other %% cell
# (%%bash, %%html, %%writefile ...) is not Python and is not graded.
PYTHON_CELL_MAGICS = {"time", "capture"}
# A shell or magic line (`!pip ...`, `%timeit f()`, `files = !ls`): not Python, replaced by `pass`
# so that every other line keeps its number.
MAGIC_LINE = re.compile(r"^(\s*)(?:[!%]|[\w.]+\s*=\s*[!%])")


@dataclass(frozen=True)
class Cell:
    """One code cell. ``number`` is its 1-based position among *all* cells (markdown too), the
    count a student makes scrolling the notebook; messages say "cell N, line M"."""

    number: int
    source: str
    tags: tuple[str, ...] = ()

    def skip_reason(self) -> str | None:
        """Why this cell is not graded, or None."""
        if SKIP_TAG in self.tags:
            return f"tagged {SKIP_TAG}"
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        if SKIP_COMMENT.match(first):
            return "marked # mechgrade: skip"
        if first.startswith("%%") and first[2:].split(" ")[0] not in PYTHON_CELL_MAGICS:
            return f"a {first.split(' ')[0]} cell"
        return None

    def python(self) -> str:
        """The cell as Python, line numbers unchanged: a Python cell magic's first line blanked,
        shell and magic lines replaced by `pass`. Only cells that do not parse as they are are
        rewritten, so a docstring line starting with '%' is left alone."""
        lines = self.source.splitlines()
        if lines and lines[0].lstrip().startswith("%%"):
            lines[0] = ""
        text = "\n".join(lines) + "\n"
        try:
            ast.parse(text)
            return text
        except SyntaxError:
            return "\n".join(MAGIC_LINE.sub(r"\1pass  # ", line) if MAGIC_LINE.match(line) else line for line in lines) + "\n"


def read_cells(path: Path) -> list[Cell]:
    """The code cells of a notebook file; a ``WorkspaceError`` in one sentence if it is not a
    readable nbformat-4 notebook."""
    path = Path(path)
    if not path.is_file():
        raise WorkspaceError(f"No notebook at {path}: create one with `mechgrade start LESSON --notebook {path}`.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WorkspaceError(f"{path} is not a notebook (not valid JSON: {err}).") from None
    except RecursionError:
        raise WorkspaceError(f"{path} is not a notebook (its JSON is nested too deeply).") from None
    if not isinstance(data, dict) or data.get("nbformat") != 4 or not isinstance(data.get("cells"), list):
        raise WorkspaceError(f"{path} is not an nbformat 4 notebook (Jupyter's current format); open and save it in Jupyter.")
    cells = []
    for number, cell in enumerate(data["cells"], 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        tags = (cell.get("metadata") or {}).get("tags") or []
        cells.append(Cell(number=number, source=source, tags=tuple(str(t) for t in tags if isinstance(t, str))))
    return cells


# -- writing --------------------------------------------------------------------------------------

def split_module(source: str) -> list[str]:
    """A module's source as notebook cells: its imports (the module docstring dropped), then one
    cell per top-level function or class, so that an error in one cannot hide another."""
    tree = ast.parse(source)
    lines = source.splitlines()
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant) else tree.body
    header, cells = [], []
    for node in body:
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        text = "\n".join(lines[start:node.end_lineno]).strip()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            cells.append(text)
        else:
            header.append(text)
    return (["\n".join(header)] if header else []) + cells


def _cell(kind: str, text: str, tags: tuple[str, ...] = ()) -> dict:
    cell = {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {}, "source": text.strip("\n")}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def build_notebook(lesson, *, sources: dict[str, str], intro: str, sections: dict[str, str], model_spec: str) -> dict:
    """The nbformat-4 JSON of a lesson: ``intro`` and one markdown section per exercise (from the
    lesson's templates), each followed by its module's cells and, per function, a cell that
    checks it. The setup and check cells are tagged not for grading: they run in the kernel."""
    skip = (SKIP_TAG,)
    cells = [_cell("markdown", intro),
             _cell("code", f"# Not graded: loads the model for your own experiments, and the checker.\n"
                           f"from mechgrade import check\nfrom mechgrade.models import load_model\n\n"
                           f"model = load_model({model_spec!r})", skip)]
    for exercise in lesson.exercises:
        cells.append(_cell("markdown", sections[exercise.id]))
        cells += [_cell("code", text) for text in split_module(sources[f"{exercise.id}.py"])]
        cells += [_cell("code", f"check({lesson.id!r}, {f.name})", skip) for f in exercise.functions]
    return _notebook(cells)


def module_notebook(source: str) -> dict:
    """A student's single .py file (``mechgrade grade``'s loose NAME.py) as a notebook of its
    top-level pieces, graded like any notebook: one broken function costs only itself. A file
    that does not parse is one cell, whose error is then reported as such."""
    try:
        pieces = split_module(source)
    except SyntaxError:
        pieces = [source]
    return _notebook([_cell("code", text) for text in pieces])


def _notebook(cells: list[dict]) -> dict:
    for i, cell in enumerate(cells, 1):  # nbformat 4.5 ids; deterministic, so regenerated notebooks diff cleanly
        cell["id"] = f"cell-{i}"
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": kernel, "language_info": {"name": "python"}}}
