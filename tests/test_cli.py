"""The CLI: thin commands over the library, one-sentence errors, documented exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mechgrade import __version__
from mechgrade.cli.main import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_help_and_version(runner):
    out = runner.invoke(cli, ["--help"])
    assert out.exit_code == 0
    for command in ("start", "check", "list", "models"):
        assert command in out.output
    assert runner.invoke(cli, ["--version"]).output.strip().endswith(__version__)


def test_list_shows_lessons_and_exercises(runner):
    out = runner.invoke(cli, ["list"])
    assert out.exit_code == 0
    assert "lesson27: What interpretability researchers actually do (100 points" in out.output
    assert "induction_scores" in out.output and "sae_loss" in out.output


def test_models_lists_embedded(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    out = runner.invoke(cli, ["models"])
    assert out.exit_code == 0
    assert "embedded" in out.output and "available" in out.output and "gpt2" in out.output and "missing" in out.output


def test_models_inspect_embedded_prints_the_circuit(runner):
    out = runner.invoke(cli, ["models", "--inspect", "embedded"])
    assert out.exit_code == 0, out.output
    assert "2 layers, 4 heads" in out.output and "previous-token head: L0H0" in out.output
    assert "lesson27:" in out.output.splitlines()  # the lesson's inspect hook, under its id
    assert sum(line.strip().startswith("seq_len") and "induction head L1H0" in line for line in out.output.splitlines()) == 4
    assert "zero-ablating the induction head L1H0 at seq_len 32" in out.output
    assert "SAE on blocks.1.hook_resid_post" in out.output and "'repeats an earlier token' label at r = 0.9" in out.output


def test_start_creates_refuses_and_keeps_work(runner, tmp_path):
    ws = tmp_path / "l27"
    out = runner.invoke(cli, ["start", "lesson27", str(ws)])
    assert out.exit_code == 0, out.output
    assert {p.name for p in ws.iterdir()} == {"hooks.py", "induction.py", "circuits.py", "patching.py", "dla.py", "probe.py", "superposition.py", "sae.py", "README.md"}
    (ws / "sae.py").write_text("# my work\n")
    again = runner.invoke(cli, ["start", "lesson27", str(ws)])
    assert again.exit_code == 2 and "is not empty" in again.output and "Traceback" not in again.output
    assert (ws / "sae.py").read_text() == "# my work\n"
    forced = runner.invoke(cli, ["start", "lesson27", str(ws), "--force"])
    assert forced.exit_code == 0
    backups = list(ws.glob("sae.py.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == "# my work\n"


def test_start_solutions_writes_the_reference(runner, tmp_path):
    out = runner.invoke(cli, ["start", "lesson27", str(tmp_path / "s"), "--solutions"])
    assert out.exit_code == 0
    assert "NotImplementedError" not in (tmp_path / "s" / "sae.py").read_text()


def test_check_exit_codes_and_json(runner, reference_ws, stub_ws, tmp_path):
    ok = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "-e", "sae"])
    assert ok.exit_code == 0, ok.output
    assert "Total: 11 / 11 points" in ok.output
    bad = runner.invoke(cli, ["check", "lesson27", "--path", str(stub_ws), "-e", "sae", "--json"])
    assert bad.exit_code == 1
    data = json.loads(bad.stdout)
    assert data["score"] == 0 and all(t["status"] == "failed" for t in data["tests"])
    results = tmp_path / "r.json"
    runner.invoke(cli, ["check", "lesson27", "--path", str(stub_ws), "-e", "sae", "--results", str(results)])
    assert json.loads(results.read_text())["score"] == 0


@pytest.mark.parametrize("args, needle", [
    (["check", "lesson27", "--path", "/nonexistent/ws"], "No workspace at /nonexistent/ws"),
    (["check", "lesson99"], "No lesson 'lesson99' is installed; available: lesson27."),
    (["check", "lesson27", "-e", "attention"], "has no exercise 'attention'"),
    (["check", "lesson27", "--model", "/no/such/model"], "The model directory '/no/such/model' does not exist"),
    (["start", "lesson99"], "No lesson 'lesson99'"),
])
def test_usage_errors_are_one_sentence_with_exit_2(runner, args, needle, reference_ws, monkeypatch):
    monkeypatch.chdir(reference_ws.parent)
    if "-e" in args or "--model" in args:
        args = args + ["--path", str(reference_ws)]
    out = runner.invoke(cli, args)
    assert out.exit_code == 2, out.output
    assert needle in out.output and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_check_never_runs_a_conftest_found_from_the_current_folder(runner, reference_ws, tmp_path, monkeypatch):
    """The grading process runs pytest in-process: a conftest.py in the current folder (or one its
    pytest configuration points at) must not run there."""
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["t"]\n')
    (tmp_path / "t").mkdir()
    for conftest in (tmp_path / "conftest.py", tmp_path / "t" / "conftest.py"):
        conftest.write_text("import pathlib; pathlib.Path(__file__).with_name('RAN').write_text('x')\n")
    monkeypatch.chdir(tmp_path)
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "-e", "sae"])
    assert out.exit_code == 0, out.output
    assert not (tmp_path / "RAN").exists() and not (tmp_path / "t" / "RAN").exists()


def test_gpt2_offline_is_one_sentence(runner, reference_ws, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = runner.invoke(cli, ["check", "lesson27", "--path", str(reference_ws), "--model", "gpt2"])
    assert out.exit_code == 2 and "--model embedded" in out.output and "Traceback" not in out.output


def _readme_blocks(text: str) -> list[str]:
    return [b.split("\n", 1)[1].strip() for b in text.split("```")[1::2] if b.startswith("bash")]


def test_readme_test_command_is_what_ci_runs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ci = [line for line in (root / ".ci" / "run").read_text().splitlines() if line.startswith("python3 -m venv")]
    tests = [b for b in _readme_blocks((root / "README.md").read_text()) if b.endswith("pytest -q")]
    assert len(ci) == 1 and tests == [ci[0]]


def test_readme_installs_torch_as_the_autograder_setup_does():
    """The CPU build: a wheel pip finds without an index (as on this machine), else PyTorch's CPU
    index, never plain PyPI's CUDA build on Linux; the same version and index as setup.sh."""
    from importlib.metadata import version
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    torch = version("torch").split("+")[0]
    step = (f"{{ pip install -q --no-index --no-deps torch=={torch} 2>/dev/null && pip install -q torch=={torch}; }} "
            f"|| pip install -q torch=={torch} --index-url https://download.pytorch.org/whl/cpu")
    commands = [b for b in _readme_blocks((root / "README.md").read_text()) if b.startswith("python3 -m venv")]
    assert len(commands) == 2 and all(f"&& ({step}) &&" in c for c in commands)
    setup = (root / "mechgrade" / "export" / "templates" / "setup.sh.j2").read_text()
    assert '--no-index --no-deps "torch=={{ torch }}"' in setup and "--index-url https://download.pytorch.org/whl/cpu" in setup


def test_start_describes_a_model_that_is_not_downloaded_yet(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    out = runner.invoke(cli, ["start", "lesson27", str(tmp_path / "w"), "--model", "gpt2"])
    assert out.exit_code == 0 and "**gpt2** model" in (tmp_path / "w" / "README.md").read_text()


@pytest.mark.parametrize("model", ["embedded", "gpt2"])
def test_export_advice_agrees_with_itself_and_the_readme(runner, tmp_path, model):
    """The figures printed are the README's, name nothing a pip user lacks, and give the student's
    memory once (not 'limited to 2048 MB' beside 'then gets 136 MB')."""
    import re

    result = runner.invoke(cli, ["export", "gradescope", "lesson27", "-o", str(tmp_path / "a.zip"), "--model", model])
    assert result.exit_code == 0, result.output
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "benchmarks/" not in result.output
    for seconds in re.findall(r"took (\d+-\d+ s)", result.output):
        assert seconds in readme
    gets = re.findall(r"student code (?:then gets|limited to) (\d+) MB", result.output)
    assert len(gets) == 1, result.output
    mem = re.search(r"up to --mem-mb (\d+)", result.output)
    assert mem and int(gets[0]) <= int(mem.group(1)) == (256 if model == "embedded" else 2048), result.output


def test_readme_command_table_names_every_option():
    """The README's command table is the user's reference: every option of every command is in
    its command's row; --help shows the defaults it declares (grade's -o among them)."""
    import click

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    rows = {line.split("`")[1]: line for line in readme.splitlines() if line.startswith("| `mechgrade ")}

    def commands(group: click.Group, prefix: str):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from commands(command, f"{prefix} {name}")
            else:
                yield f"{prefix} {name}", command

    missing = []
    for name, command in commands(cli, "mechgrade"):
        row = next((usage for usage in rows if usage == name or usage.startswith(name + " ")), None)
        assert row is not None, f"no README row for {name}"
        for param in command.params:
            if isinstance(param, click.Option) and not any(f"{opt}" in row.split() or f"[{opt}" in row for opt in param.opts):
                missing.append(f"{name} {param.opts[0]}")
            if isinstance(param, click.Option) and param.show_default and param.default not in (None, False):
                help_text = CliRunner().invoke(cli, [*name.split()[1:], "--help"]).output
                assert f"default: {param.default}" in " ".join(help_text.split()), (name, param.opts)
    assert missing == []
    grade_help = " ".join(CliRunner().invoke(cli, ["grade", "--help"]).output.split())
    assert "[default: gradebook.csv]" in grade_help


def test_readme_quick_start_leaves_the_checkout_clean():
    """The quick start is run from a fresh clone: the folders it creates there are ignored by git,
    so that `git status` stays clean."""
    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    ignored = (root / ".gitignore").read_text().splitlines()
    created = set(re.findall(r"mechgrade start lesson27 (\w+)", readme.split("## Quick start")[1].split("\n## ")[0]))
    assert created and all(f"/{name}/" in ignored for name in created | {"lesson27"}), (created, ignored)
