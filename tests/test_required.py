"""A test that needs a facility is skipped where it is missing, and fails where
``MECHGRADE_REQUIRE`` lists it (CI): run on a test file of its own, in a pytest of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
NEEDY = '''
import required
required.available = lambda facility: False  # as on a machine without it
pytestmark = required.needs("bwrap", "bubblewrap is not here")

def test_marked():
    pass
'''
MISSING = '''
from required import missing

def test_found_missing_inside():
    missing("chromium", "Chromium is not here")
'''


def run_pytest(tmp_path: Path, source: str, require: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_needy.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k not in ("MECHGRADE_REQUIRE", "CI")}
    if require is not None:
        env["MECHGRADE_REQUIRE"] = require
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(tmp_path),
                           str(tmp_path / "test_needy.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("source", [NEEDY, MISSING], ids=["mark", "inside"])
def test_a_missing_facility_skips_with_its_reason(source, tmp_path):
    proc = run_pytest(tmp_path, source, None)
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout[-1500:]


@pytest.mark.parametrize("source,facility", [(NEEDY, "bwrap"), (MISSING, "chromium")], ids=["mark", "inside"])
@pytest.mark.parametrize("require", ["all", "root,{facility}"])
def test_a_required_facility_that_is_missing_fails(source, facility, require, tmp_path):
    proc = run_pytest(tmp_path, source, require.format(facility=facility))
    assert proc.returncode != 0 and "skipped" not in proc.stdout, proc.stdout[-1500:]
    assert f"MECHGRADE_REQUIRE lists '{facility}'" in proc.stdout


def test_ci_requires_every_facility():
    assert "export MECHGRADE_REQUIRE=all" in (HERE.parent / ".ci" / "run").read_text()
