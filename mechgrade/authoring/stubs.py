"""Stubs from the reference: each public function keeps its signature, annotations and
docstring, and its body becomes a TODO that raises ``NotImplementedError``. Helpers (names
starting with ``_``) are dropped, so a stub never spells out part of a solution."""

from __future__ import annotations

import ast
from pathlib import Path

from mechgrade import lessons


def stub_source(source: str) -> str:
    tree = ast.parse(source)
    body = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            if node.name.startswith("_"):
                continue
            doc = ast.get_docstring(node, clean=False)
            todo = ast.parse(f'raise NotImplementedError("TODO: implement {node.name}")').body
            node.body = ([ast.Expr(ast.Constant(doc))] if doc else []) + todo
        body.append(node)
    tree.body = body
    return ast.unparse(tree) + "\n"


def write_stubs(reference_dir: Path, stubs_dir: Path) -> list[Path]:
    """Write one stub module per reference module into ``stubs_dir`` (its ``__init__.py``, the
    stubs' own docstring, is kept where it exists). Returns the files written."""
    written = []
    stubs_dir.mkdir(parents=True, exist_ok=True)
    for ref in sorted(reference_dir.glob("*.py")):
        out = stubs_dir / ref.name
        if ref.name == "__init__.py":
            if out.exists():
                continue
            text = '"""Stubs: the reference\'s functions with TODO bodies (mechgrade new stubs)."""\n'
        else:
            text = stub_source(ref.read_text(encoding="utf-8"))
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written


def regenerate(lesson_id: str) -> list[Path]:
    """Rewrite an installed lesson's stubs package from its reference (an editable install:
    the files are written where the package is imported from)."""
    plugin = lessons.get(lesson_id)
    return write_stubs(plugin.reference_dir(), plugin.stubs_dir())
