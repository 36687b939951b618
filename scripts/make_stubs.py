"""Regenerate student_template/<lesson>/ from reference/<lesson>/: public functions keep their
signature, annotations and docstring; their body becomes a NotImplementedError TODO.

Usage: python scripts/make_stubs.py lesson27   (tests/test_templates.py checks the result)
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stub_source(source: str) -> str:
    tree = ast.parse(source)
    body = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            if node.name.startswith("_"):
                continue
            doc = ast.get_docstring(node, clean=False)
            todo = ast.parse(f'raise NotImplementedError("TODO: implement {node.name}")').body
            node.body = [ast.Expr(ast.Constant(doc))] + todo
        body.append(node)
    tree.body = body
    return ast.unparse(tree) + "\n"


def main(lesson: str) -> None:
    for ref in sorted((ROOT / "reference" / lesson).glob("*.py")):
        out = ROOT / "student_template" / lesson / ref.name
        out.parent.mkdir(parents=True, exist_ok=True)
        if ref.name == "__init__.py" and out.exists():
            continue  # the stubs' package docstring is their own
        out.write_text(ref.read_text() if ref.name == "__init__.py" else stub_source(ref.read_text()))


if __name__ == "__main__":
    main(sys.argv[1])
