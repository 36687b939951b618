"""An exported Gradescope autograder laid out like /autograder and set up by its setup.sh:
shared by tests/test_export.py and tests/test_container.py (one zip, one setup per session,
through the fixtures in conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import jsonschema

SCHEMA = json.loads((Path(__file__).parent / "data" / "gradescope_results.schema.json").read_text())


def script_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment Gradescope would give the scripts: none of this test run's model caches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MECHGRADE_"))}
    return {**env, "MECHGRADE_AUTOGRADER_ROOT": str(root), **extra}


class Autograder:
    """A root laid out like /autograder, set up by the exported setup.sh."""

    def __init__(self, root: Path):
        self.root = root
        self.env = script_env(root)

    @property
    def command(self) -> list[str]:
        return ["bash", str(self.root / "source" / "run_autograder")]

    def stage(self, files: dict[str, str], folder: str = "") -> None:
        """Replace the submission with ``files`` (under ``folder``)."""
        submission = self.root / "submission"
        shutil.rmtree(submission, ignore_errors=True)
        (submission / folder).mkdir(parents=True)
        for name, text in files.items():
            (submission / folder / name).write_text(text)

    def results(self) -> dict:
        """results.json, validated against Gradescope's schema."""
        data = json.loads((self.root / "results" / "results.json").read_text())
        jsonschema.validate(data, SCHEMA)
        return data

    def run(self, files: dict[str, str], folder: str = "", *, cwd: Path | None = None, env: dict | None = None) -> dict:
        """Stage ``files``, run run_autograder (from ``cwd``, with ``env`` added), return results.json."""
        self.stage(files, folder)
        proc = subprocess.run(self.command, env={**self.env, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=1500)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return self.results()


def live_processes(uid: int) -> list[int]:
    """Processes of ``uid`` that can still run (a killed process whose new parent has not reaped
    it yet stays in /proc as a zombie: it runs no code)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{entry}/status").read_text().splitlines() if ":" in line)
        except (OSError, ValueError):
            continue
        if status["Uid"].split()[0] == str(uid) and not status["State"].strip().startswith("Z"):
            found.append(int(entry))
    return found


def make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="mechgrade-autograder-", dir="/tmp"))
    root.chmod(0o755)  # the student user must traverse to runtime/, as on Gradescope
    return root


def unpack(zip_path: Path, root: Path) -> None:
    (root / "source").mkdir()
    (root / "submission").mkdir()
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)


def setup(root: Path, steps: str | None = None) -> None:
    env = script_env(root, **({"MECHGRADE_SETUP_STEPS": steps} if steps else {}))
    proc = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
