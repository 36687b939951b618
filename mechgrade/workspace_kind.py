"""What kind of workspace is graded, decided once, from its path and from how it was sent.

Every side asks this one question: the CLI and the session (is the path readable as what it
claims to be), the runner (what to copy, whether a boot that died ran student code), the
worker (what to put on ``sys.path``, whether to run cells before greeting) and the grader
(what the feedback tells the student to do next). Standard library only: the worker imports
it inside its sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

NOTEBOOK_SUFFIX = ".ipynb"

# folder: a folder of the lesson's modules (``mechgrade check --path DIR``);
# notebook: one Jupyter notebook file, whose graded cells the worker runs at boot;
# cell, script: one function that ``check()`` sent from a notebook cell or a script,
# written into a temporary folder of modules.
Kind = Literal["folder", "notebook", "cell", "script"]
SentFrom = Literal["notebook", "script"]


@dataclass(frozen=True)
class Workspace:
    path: Path
    kind: Kind

    @classmethod
    def at(cls, path: Path | str, *, sent_from: SentFrom | None = None) -> Workspace:
        """The workspace at ``path``; ``sent_from``: where ``check()`` was called, if it wrote it."""
        path = Path(path)
        if sent_from is not None:
            return cls(path, "cell" if sent_from == "notebook" else "script")
        return cls(path, "notebook" if path.suffix == NOTEBOOK_SUFFIX else "folder")

    @property
    def is_notebook(self) -> bool:
        """One notebook file: its cells are student code the worker runs while booting."""
        return self.kind == "notebook"

    @property
    def module_dir(self) -> Path:
        """The folder the student's code imports its neighbours from (the worker's ``sys.path[0]``)."""
        return self.path.parent if self.is_notebook else self.path

    @property
    def in_place(self) -> bool:
        """The student's functions are defined where they work (a notebook, or the cell or script
        that called ``check()``), not imported from modules: a rerun snippet imports none."""
        return self.kind != "folder"
