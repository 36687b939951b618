"""The worst submissions of issue 13, as files to upload: built from the reference by replacing
function bodies, so that everything not named stays correct. Used by tests/test_container.py
and benchmarks/autograder.py."""

from __future__ import annotations

import ast
import json
import tempfile
import textwrap
from pathlib import Path

from mechgrade.spec import load_lesson
from mechgrade.workspace import module_sources

LOOP = "while True:\n    pass"
SLEEP = "import time\ntime.sleep(3600)"
DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    end = time.time() + 900
    while time.time() < end:
        pass
    os._exit(0)
time.sleep(3600)"""  # a daemon that spins for 15 minutes, then the call sleeps
ALLOCATE = "import torch\nhoard = []\nwhile True:\n    hoard.append(torch.ones(2**22))"
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
IGNORES_ALARM = "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(3600)\n"


def functions(module: str) -> list[str]:
    return [f.name for e, f in load_lesson("lesson27").functions.values() if e.id == module]


def with_bodies(source: str, names: list[str], body: str) -> str:
    """``source`` with the bodies (docstrings kept) of the functions ``names`` replaced."""
    lines = source.splitlines()
    tree = ast.parse(source)
    for fn in sorted((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names), key=lambda n: -n.lineno):
        first = fn.body[1] if ast.get_docstring(fn) and len(fn.body) > 1 else fn.body[0]
        lines[first.lineno - 1:fn.end_lineno] = textwrap.indent(textwrap.dedent(body).strip(), "    ").splitlines()
    return "\n".join(lines) + "\n"


def everywhere(body: str) -> dict[str, str]:
    """Every function of every module has ``body``."""
    return {name: with_bodies(text, functions(name[:-3]), body) for name, text in module_sources(load_lesson("lesson27"), solutions=True).items()}


def notebook_ignoring_its_alarm() -> dict[str, str]:
    """The reference notebook with a cell, before the functions, that ignores SIGALRM and sleeps."""
    from mechgrade.workspace import create_notebook

    with tempfile.TemporaryDirectory() as tmp:
        nb = json.loads(create_notebook(load_lesson("lesson27"), Path(tmp) / "work.ipynb", solutions=True).read_text())
    nb["cells"].insert(2, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": IGNORES_ALARM})
    return {"work.ipynb": json.dumps(nb)}


def worst_cases() -> dict[str, dict[str, str]]:
    """{name: files}: each worst case of issue 13 on its own."""
    ref = module_sources(load_lesson("lesson27"), solutions=True)
    sleeps = everywhere(SLEEP)
    sleeps["hooks.py"] = with_bodies(ref["hooks.py"], ["get_activations"], DAEMON)
    return {
        "every function loops forever": everywhere(LOOP),
        "every function sleeps, plus a daemon": sleeps,
        "a notebook cell ignores SIGALRM": notebook_ignoring_its_alarm(),
        "a function allocates until stopped": {**ref, "sae.py": with_bodies(ref["sae.py"], ["sae_encode"], ALLOCATE)},
        "a fork bomb": {**ref, "dla.py": with_bodies(ref["dla.py"], ["head_logit_attribution"], FORK_BOMB)},
        "an import never returns": {**ref, "patching.py": ref["patching.py"] + "\n" + LOOP + "\n"},
    }
