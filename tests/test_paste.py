"""Lines meant to be pasted, as a student meets them: in a real 80-column terminal, copied as
shown into the plain ``python`` REPL (no leading indent, never wrapped inside a string)."""

from __future__ import annotations

import subprocess
import sys

import terminal
from mechgrade.engine.mutants import load_catalogue, write_mutant_workspace


def test_rerun_lines_paste_into_python_at_80_columns(tmp_path):
    mutant = next(m for m in load_catalogue("lesson27").mutants if m.name == "direction-sign")
    ws = write_mutant_workspace("lesson27", mutant, tmp_path / "ws")  # component_logit_attribution: a long name
    done = terminal.run(["check", "lesson27", "--path", str(ws), "-e", "dla"], cols=80)
    assert done.returncode == 1, done.output
    lines = done.output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("from mechgrade import case_inputs")]
    assert starts, done.output
    for i in starts:
        pasted = "\n".join(lines[i:i + 2]) + "\n"
        assert "component_logit_attribution(**case_inputs(" in done.output
        repl = subprocess.run([sys.executable, "-i", "-q"], input=pasted + "print('PASTED OK')\n", capture_output=True,
                              text=True, cwd=ws, timeout=300)
        assert "PASTED OK" in repl.stdout and "Error" not in repl.stderr, (pasted, repl.stderr[-2000:])
