"""One decision of what a workspace is (``mechgrade.workspace_kind``), for every side that asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from mechgrade.workspace_kind import Workspace


@pytest.mark.parametrize("path, sent_from, kind, module_dir, in_place", [
    ("ws", None, "folder", "ws", False),
    ("ws/lesson27.ipynb", None, "notebook", "ws", True),
    ("/tmp/mechgrade-check-x", "notebook", "cell", "/tmp/mechgrade-check-x", True),
    ("/tmp/mechgrade-check-x", "script", "script", "/tmp/mechgrade-check-x", True),
    ("ws.ipynb.d", None, "folder", "ws.ipynb.d", False),  # the suffix decides, not a name containing it
])
def test_the_kind_and_what_follows_from_it(path, sent_from, kind, module_dir, in_place):
    space = Workspace.at(path, sent_from=sent_from)
    assert (space.kind, space.module_dir, space.in_place, space.is_notebook) == (kind, Path(module_dir), in_place, kind == "notebook")


def test_the_worker_can_import_it_without_anything_heavy():
    import subprocess
    import sys

    code = "import sys, mechgrade.workspace_kind, mechgrade.engine.protocol; print(sorted({'torch', 'transformer_lens'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
