"""The exports, run for real.

Gradescope: the zip is unpacked into a root laid out like /autograder (the scripts read the
root from MECHGRADE_AUTOGRADER_ROOT), its setup.sh runs every step (virtual environment,
packages from the registry, the student user, permissions), and run_autograder grades
submissions exactly as Gradescope would start it. Student bundle: the wheel is installed into
a fresh virtual environment, where `start` and `check` must work without the reference.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tomllib
import zipfile
from pathlib import Path

import jsonschema
import pytest
from attacks import DEEP_SCRATCH

from mechgrade.engine.key import AnswerKey
from mechgrade.export.files import public_numbers
from mechgrade.export.gradescope import export_gradescope
from mechgrade.export.student import export_student
from mechgrade.spec import load_lesson
from mechgrade.workspace import module_sources

from required import needs
from gradescope_root import SCHEMA, Autograder, live_processes, make_root, script_env, setup, unpack

USER = "mechgrade-student"
as_root = needs("root", "setup.sh creates a user and sets ownership: needs root, as on Gradescope")


def solution_lines(lesson) -> set[str]:
    """Lines of the reference's function bodies that a student must not find: longer than a
    few tokens and in no stub (signatures and docstrings are shared with the stubs on purpose)."""
    import ast

    # The stubs' docstrings state some lines on purpose (e.g. a pinned random recipe), wrapped
    # across lines: compare with white space folded.
    stubs = " ".join("\n".join(module_sources(lesson).values()).split())
    lines = set()
    for text in module_sources(lesson, solutions=True).values():
        for fn in ast.walk(ast.parse(text)):
            if isinstance(fn, ast.FunctionDef):
                body = fn.body[1:] if ast.get_docstring(fn) else fn.body
                for stmt in body:
                    lines.update(line.strip() for line in ast.get_source_segment(text, stmt).splitlines())
    return {line for line in lines if len(line) >= 25 and " ".join(line.split()) not in stubs}


def leaks(texts: dict[str, str], lesson) -> list[str]:
    lines = solution_lines(lesson)
    return [f"{name}: {line}" for name, text in texts.items() for line in lines if line in text]


def zip_texts(data: bytes, prefix: str = "") -> dict[str, str]:
    """Every member's text, descending into wheels."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            member = zf.read(name)
            if name.endswith((".whl", ".zip")):
                out.update(zip_texts(member, prefix + name + "!"))
            else:
                out[prefix + name] = member.decode("utf-8", "replace")
    return out


def test_leak_check_finds_solution_text(lesson):
    """The check the bundle tests rely on, shown to fire on a reference module."""
    ref = module_sources(lesson, solutions=True)["induction.py"]
    assert leaks({"induction.py": ref}, lesson)
    assert not leaks({"induction.py": module_sources(lesson)["induction.py"]}, lesson)


# -- Gradescope ---------------------------------------------------------------------------
def reference_files(lesson, **overrides: str) -> dict[str, str]:
    return {**module_sources(lesson, solutions=True), **overrides}


def points(lesson, exercise: str | None = None) -> float:
    return sum(c.points for e, _, c in lesson.iter_cases(hidden=True) if exercise in (None, e.id))


def test_zip_layout(autograder_zip, lesson):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        config = json.loads(zf.read("autograder.json"))
    assert {"setup.sh", "run_autograder", "autograder.json"} <= names
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert any(n.startswith("trusted/mechgrade/reference/lesson27/") for n in names)
    assert any(n.startswith("cache/keys/lesson27/embedded-") for n in names)
    assert config["hidden_visibility"] == "after_published" and config["mem_mb"] == 256


def test_the_zips_key_is_believed_where_it_is_unpacked(autograder_zip, lesson, tmp_path, monkeypatch):
    """setup.sh's key cache is the zip's: with its manifest of hashes beside it, nothing is
    recomputed (before: "could not be checked", and the whole key computed again at setup)."""
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(tmp_path, [n for n in zf.namelist() if n.startswith("cache/")])
    monkeypatch.setenv("MECHGRADE_CACHE_DIR", str(tmp_path / "cache"))
    key = AnswerKey(lesson, "embedded")
    assert key.notices == [] and key.fill(lesson.iter_cases(hidden=True)) is False, key.notices


def test_runtime_wheel_holds_no_solution_hidden_case_or_key(autograder_zip, lesson):
    """What the student's code can read on Gradescope: the runtime wheel."""
    with zipfile.ZipFile(autograder_zip) as zf:
        wheel = next(n for n in zf.namelist() if n.startswith("wheels/"))
        texts = zip_texts(zf.read(wheel))
    assert not leaks(texts, lesson)
    assert not [n for n in texts if "/reference/" in n or "/keys/" in n or "/graders/" in n]
    assert only_public_cases(texts["mechgrade/exercises/lesson27/lesson.toml"])  # hidden points, never hidden cases
    assert "old =" not in texts["mechgrade/exercises/lesson27/mutants.toml"]


@as_root
def test_reference_gets_full_marks_and_hidden_cases_show_after_publishing(autograder, lesson):
    data = autograder.run(reference_files(lesson))
    assert data["score"] == points(lesson) == 100
    assert len(data["tests"]) == sum(1 for _ in lesson.iter_cases(hidden=True))
    assert all(t["score"] == t["max_score"] for t in data["tests"])
    hidden = {c.number for _, _, c in lesson.iter_cases(hidden=True) if c.visibility == "hidden"}
    assert {t["visibility"] for t in data["tests"] if t["number"] in hidden} == {"after_published"}
    assert {t["visibility"] for t in data["tests"] if t["number"] not in hidden} == {"visible"}


@as_root
def test_the_visible_output_says_nothing_of_hidden_results(autograder, lesson):
    """The top-level output is visible at once: it gives the visible tests' score only (a
    student who saw 'N / 100' could hill-climb the hidden cases one submission at a time)."""
    wrong_hidden = reference_files(lesson)
    data = autograder.run(wrong_hidden)
    visible = sum(t["max_score"] for t in data["tests"] if t["visibility"] == "visible")
    assert data["score"] == 100  # the grade itself: Gradescope hides it while tests are hidden
    assert f"{visible:g} / {visible:g} points on the visible tests" in data["output"]
    assert "100" not in data["output"] and "execution_time" not in data


@as_root
def test_hidden_inputs_never_reach_a_visible_test(autograder, lesson):
    """A submission that records every call it gets and fails each with the record: the
    hidden cases run last, in a worker of their own, so no visible output shows one of them."""
    from leaks import RECORDER

    files = {name: text + "\n" + RECORDER for name, text in module_sources(lesson).items()}
    data = autograder.run(files)
    seen = {t["number"]: re.findall(r"seen ((?:\w+:[0-9a-f]{10} ?)+)", t["output"]) for t in data["tests"]}
    hidden_calls = {found[0].split()[0] for t in data["tests"] if t["visibility"] != "visible"
                    for found in [seen[t["number"]]] if found}
    own = {found[0].split()[0] for t in data["tests"] if t["visibility"] == "visible" for found in [seen[t["number"]]] if found}
    assert len(hidden_calls) == sum(1 for _, _, c in lesson.iter_cases(hidden=True) if c.visibility == "hidden")
    hidden_calls -= own  # inputs a public case has too are no secret
    leaked = {call for t in data["tests"] if t["visibility"] == "visible" for record in seen[t["number"]]
              for call in record.split() if call in hidden_calls}
    assert not leaked, f"{len(leaked)} hidden cases' inputs appeared in visible tests"


@as_root
def test_stubs_get_zero(autograder, lesson):
    data = autograder.run(module_sources(lesson))
    assert data["score"] == 0 and len(data["tests"]) == sum(1 for _ in lesson.iter_cases(hidden=True))


@as_root
def test_one_wrong_exercise_loses_exactly_its_points_in_a_folder_upload(autograder, lesson):
    files = reference_files(lesson, **{"sae.py": module_sources(lesson)["sae.py"]})
    data = autograder.run(files, folder="lesson27")
    assert data["score"] == points(lesson) - points(lesson, "sae")
    assert {t["tags"][0] for t in data["tests"] if t["score"] < t["max_score"]} == {"sae"}


@as_root
def test_a_notebook_upload_is_graded(autograder, lesson, tmp_path):
    from mechgrade.workspace import create_notebook

    notebook = create_notebook(lesson, tmp_path / "work.ipynb", solutions=True)
    data = autograder.run({"work.ipynb": notebook.read_text()}, folder="upload")
    assert data["score"] == 100, [t["output"] for t in data["tests"] if t["score"] < t["max_score"]][:2]


@as_root
def test_empty_submission_says_what_to_upload(autograder):
    data = autograder.run({"notes.txt": "hello"})
    assert data["score"] == 0 and "Nothing to grade" in data["output"] and "hooks.py" in data["output"]


# One cheat per module (each module is imported on its own in the worker, so a cheat that kills
# its worker costs only its own module): every case must still score zero.
CHEATS = {
    "hooks.py": """
        import torch, pytest
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        pytest.fail = lambda *a, **k: None
        try:
            import mechgrade.engine.compare as c
            c.compare = lambda *a, **k: c.Verdict(passed=True)
        except Exception:
            pass
        """,
    "induction.py": """
        import inspect as _inspect
        class _Forged:
            def __eq__(self, other): return True
        for _name, _fn in list(globals().items()):
            if _inspect.isfunction(_fn) and _fn.__module__ == __name__:
                globals()[_name] = lambda *a, **k: _Forged()
        """,
    "patching.py": """
        import sys
        print('{"score": 100, "tests": []}')
        sys.__stdout__.write("PASSED 100/100\\n")
        """,
    "dla.py": "import sys\nsys.exit(0)\n",
    "probe.py": "import os\nos._exit(0)\n",
    "sae.py": """
        import os, shutil
        for target in ("/autograder", os.path.expanduser("~"), os.getcwd()):
            shutil.rmtree(target, ignore_errors=True)
        """,
}


@as_root
def test_cheats_score_zero_with_valid_results(autograder, lesson):
    """Monkeypatching, forged __eq__, fake PASSED output, sys.exit and os._exit at import, and
    deleting files: zero everywhere, and a results.json that validates."""
    stubs = module_sources(lesson)
    data = autograder.run({name: stubs[name] + "\n" + textwrap.dedent(code) for name, code in CHEATS.items()})
    assert data["score"] == 0, [t["name"] for t in data["tests"] if t["score"]]
    assert len(data["tests"]) == sum(1 for _ in lesson.iter_cases(hidden=True))


@as_root
def test_student_code_cannot_reach_the_trusted_side(autograder, lesson, tmp_path):
    """A spy in hooks.py, run as the student user: every attempt on the trusted side must fail,
    and the daemon it leaves behind is killed before results.json is written."""
    root = autograder.root
    key_file = next((root / "source" / "cache" / "keys" / "lesson27").glob("*.safetensors"))
    marker = Path(tempfile.mkdtemp(prefix="mechgrade-spy-", dir="/tmp"))
    marker.chmod(0o777)
    spy = f'''
import json, os, pathlib, signal, time
ROOT = pathlib.Path({str(root)!r})

def attempt(fn):
    try:
        fn()
        return "succeeded"
    except OSError as err:
        return type(err).__name__

def get_activations(model, tokens, hook_names):
    report = {{
        "read config": attempt(lambda: (ROOT / "source" / "autograder.json").read_text()),
        "read key": attempt(lambda: pathlib.Path({str(key_file)!r}).read_bytes()),
        "read reference": attempt(lambda: (ROOT / "source" / "trusted" / "mechgrade" / "reference" / "lesson27" / "sae.py").read_text()),
        "list results": attempt(lambda: os.listdir(ROOT / "results")),
        "write results": attempt(lambda: (ROOT / "results" / "results.json").write_text('{{"score": 100}}')),
        "write source": attempt(lambda: (ROOT / "source" / "x").write_text("x")),
        "kill grader": attempt(lambda: os.kill(os.getppid(), signal.SIGKILL)),
        "read raw submission metadata": attempt(lambda: (ROOT / "submission_metadata.json").read_text()),
    }}
    if os.fork() == 0:  # a daemon that outlives the worker and tries again later
        os.setsid()
        try:  # under the namespace layer the host's /tmp is not there: the daemon just goes on
            (pathlib.Path({str(marker)!r}) / "daemon.pid").write_text(str(os.getpid()))
        except OSError:
            pass
        for _ in range(600):
            try:
                (ROOT / "results" / "results.json").write_text('{{"score": 100}}')
            except OSError:
                pass
            time.sleep(0.1)
        os._exit(0)
    raise RuntimeError("SPY " + json.dumps(report))
'''
    (root / "submission_metadata.json").write_text('{"users": [{"email": "someone@example.edu"}]}')
    try:
        data = autograder.run(reference_files(lesson, **{"hooks.py": spy}))
    finally:
        (root / "submission_metadata.json").unlink()
    outputs = [t["output"] for t in data["tests"] if "SPY " in t["output"]]
    assert outputs, "the spy did not run"
    report, _ = json.JSONDecoder().raw_decode(outputs[0].split("SPY ", 1)[1])
    assert report and "succeeded" not in report.values(), report
    assert data["score"] == points(lesson) - points(lesson, "hooks")
    # Under the namespace layer the daemon cannot even write its pid to the host's /tmp.
    assert not live_processes(pwd.getpwnam(USER).pw_uid), "the student's daemon survived grading"
    assert json.loads((root / "results" / "results.json").read_text()) == data
    shutil.rmtree(marker, ignore_errors=True)


@as_root
def test_hidden_visibility_is_configurable(autograder, lesson, autograder_zip, tmp_path):
    from click.testing import CliRunner

    from mechgrade.cli.main import cli

    out = tmp_path / "a.zip"
    result = CliRunner().invoke(cli, ["export", "gradescope", "lesson27", "-o", str(out), "--hidden-visibility", "hidden"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as zf:
        config = zf.read("autograder.json")
    assert json.loads(config)["hidden_visibility"] == "hidden"
    original = (autograder.root / "source" / "autograder.json").read_bytes()
    (autograder.root / "source" / "autograder.json").write_bytes(config)
    try:
        data = autograder.run(reference_files(lesson))
    finally:
        (autograder.root / "source" / "autograder.json").write_bytes(original)
    assert {t["visibility"] for t in data["tests"]} == {"visible", "hidden"}


def test_run_autograder_writes_results_even_when_grading_cannot_start(autograder_zip, tmp_path):
    """No runtime at all (setup never ran): the shell still leaves a valid results.json."""
    root = tmp_path / "root"
    root.mkdir()
    unpack(autograder_zip, root)
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=script_env(root), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["score"] == 0 and "could not grade" in data["output"]


def run_on_other_model(autograder: Autograder, zip_path: Path, lesson, place_model=None) -> tuple[dict, Path]:
    """Set up ``zip_path`` in a new root that reuses the fixture's installed packages (only the
    model and user steps run), optionally ``place_model(root)`` first; grade the reference."""
    root = make_root()
    unpack(zip_path, root)
    (root / "runtime").mkdir()
    (root / "runtime" / "venv").symlink_to(autograder.root / "runtime" / "venv")
    if place_model:
        place_model(root)
    setup(root, steps="model users")
    return Autograder(root).run(reference_files(lesson)), root


@as_root
def test_local_model_directory_is_zipped_and_its_key_computed(autograder, tiny_gpt2_dir, tiny_gpt2_key, lesson, tmp_path):
    """--model DIR: the weights travel in the zip, setup puts them in the student-readable
    runtime, and grading needs no network."""
    out = tmp_path / "tiny.zip"
    assert export_gradescope("lesson27", out, model=str(tiny_gpt2_dir)).key_cases == sum(1 for _ in lesson.iter_cases(hidden=True))
    data, root = run_on_other_model(autograder, out, lesson)
    try:
        assert data["score"] == 100, [t["output"] for t in data["tests"] if t["score"] < t["max_score"]][:2]
        assert (root / "runtime" / "model" / "config.json").is_file()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@as_root
def test_gpt2_is_cached_and_keyed_by_setup_then_graded_offline(autograder, tiny_gpt2_dir, lesson, tmp_path):
    """--model gpt2: setup.sh resolves GPT-2 into the runtime's Hugging Face cache and computes the
    key at image build; grading runs with HF_HUB_OFFLINE=1. The download itself cannot run here:
    a checkpoint saved locally, laid out as the hub's cache would hold it, stands in for it."""
    out = tmp_path / "gpt2.zip"
    assert export_gradescope("lesson27", out, model="gpt2").key_cases == 0  # nothing to compute before the weights exist

    def place(root: Path) -> None:
        snapshot = root / "runtime" / "hf" / "hub" / "models--openai-community--gpt2" / "snapshots" / "0123abcd"
        shutil.copytree(tiny_gpt2_dir, snapshot)

    data, root = run_on_other_model(autograder, out, lesson, place)
    try:
        assert data["score"] == 100, [t["output"] for t in data["tests"] if t["score"] < t["max_score"]][:2]
        assert len(list((root / "source" / "cache" / "keys" / "lesson27").glob("model-*.safetensors"))) == 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- student bundle -------------------------------------------------------------------------
def only_public_cases(spec_text: str) -> bool:
    """The bundle's lesson.toml lists public cases only (their points per function are kept as
    ``hidden_points``; the word also appears in parameters such as ``d_hidden``)."""
    spec = tomllib.loads(spec_text)
    cases = [c for e in spec["exercises"] for f in e["functions"] for c in f["cases"]]
    return bool(cases) and all(c.get("visibility", "public") == "public" for c in cases) and 'visibility = "hidden"' not in spec_text


@pytest.fixture(scope="session")
def starter(tmp_path_factory, tiny_gpt2_dir, tiny_gpt2_key):
    """A bundle exported where the instructor also has a key for a local GPT-2 checkpoint."""
    lesson = load_lesson("lesson27")
    key = AnswerKey(lesson, str(tiny_gpt2_dir))
    key.fill(lesson.iter_cases(hidden=True))
    out = tmp_path_factory.mktemp("starter") / "starter.zip"
    return export_student("lesson27", out)


def test_student_bundle_holds_no_solution_and_no_hidden_case(starter, lesson):
    texts = zip_texts(starter.path.read_bytes())
    assert not leaks(texts, lesson)
    assert not [n for n in texts if "/reference/" in n]
    prefix = f"{starter.wheel}!mechgrade/exercises/lesson27/"
    assert only_public_cases(texts[prefix + "lesson.toml"])
    keys = {n: d for n, d in texts.items() if n.startswith(prefix + "keys/") and n.endswith(".safetensors")}
    assert len(keys) == 2  # embedded, and the local checkpoint the instructor had a key for
    with zipfile.ZipFile(starter.path) as zf, zipfile.ZipFile(io.BytesIO(zf.read(starter.wheel))) as wheel:
        from mechgrade.engine.codec import from_bytes

        for name in keys:
            assert set(from_bytes(wheel.read(name.split("!", 1)[1]))) == public_numbers(lesson)
    assert {"INSTALL.md", "lesson27/README.md", "lesson27/hooks.py"} <= set(texts)
    torch_release = importlib.metadata.version("torch").split("+")[0]  # the keys were computed with it
    assert f"pip install torch=={torch_release} --index-url https://download.pytorch.org/whl/cpu" in texts["INSTALL.md"]
    # Offline or behind a mirror there is a route that never waits on the network.
    assert f"pip install --no-index --find-links DIR torch=={torch_release} {starter.wheel}" in texts["INSTALL.md"]
    assert f"pip install --index-url URL torch=={torch_release}" in texts["INSTALL.md"]


def test_student_bundle_installs_and_grades_public_cases_offline(starter, lesson, tiny_gpt2_dir, tmp_path):
    folder = tmp_path / "course"
    with zipfile.ZipFile(starter.path) as zf:
        zf.extractall(folder)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True, capture_output=True)
    subprocess.run(pip + [str(folder / starter.wheel)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", MECHGRADE_CACHE_DIR=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")

    def mechgrade(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "mechgrade"), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)

    installed = subprocess.run([str(venv / "bin" / "python"), "-c", textwrap.dedent("""
        import importlib.metadata as m, importlib.util, json
        dist = m.distribution("mechgrade")
        print(json.dumps({"reference": importlib.util.find_spec("mechgrade.reference") is not None,
                          "files": {str(f): f.read_text() for f in dist.files if not str(f).endswith((".safetensors", ".pyc"))}}))
        """)], cwd=folder, env=env, capture_output=True, text=True, check=True)
    found = json.loads(installed.stdout)
    assert found["reference"] is False
    assert not leaks(found["files"], lesson)
    assert only_public_cases(found["files"]["mechgrade/exercises/lesson27/lesson.toml"])

    stubs = mechgrade("check", "lesson27")  # the bundle's ready workspace
    assert stubs.returncode == 1 and "0 / 74 points" in stubs.stdout, stubs.stdout + stubs.stderr
    started = mechgrade("start", "lesson27", "mine")
    assert started.returncode == 0, started.stderr
    for name, text in module_sources(lesson, solutions=True).items():
        (folder / "mine" / name).write_text(text)
    full = mechgrade("check", "lesson27", "--path", "mine")
    assert full.returncode == 0 and "74 / 74 points" in full.stdout, full.stdout + full.stderr
    tiny = mechgrade("check", "lesson27", "--path", "mine", "--model", str(tiny_gpt2_dir))
    assert tiny.returncode == 0 and "74 / 74 points" in tiny.stdout, tiny.stdout + tiny.stderr
    for args, needle in ((("start", "lesson27", "sol", "--solutions"), "--solutions needs the reference"),
                         (("validate", "lesson27"), "`mechgrade validate` needs the reference"),
                         (("check", "lesson27", "--hidden"), "--hidden needs the reference"),
                         (("new", "lesson", "lesson99"), "not part of this student bundle")):
        refused = mechgrade(*args)
        assert refused.returncode == 2 and needle in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    other = tmp_path / "other-model"
    shutil.copytree(tiny_gpt2_dir, other)
    (other / "config.json").write_text((other / "config.json").read_text().replace('"n_head": 4', '"n_head": 2'))
    no_key = mechgrade("check", "lesson27", "--path", "mine", "--model", str(other))
    assert no_key.returncode == 2 and "has no answer key" in no_key.stderr, no_key.stderr


def test_export_cli_refuses_a_bad_output_path(tmp_path):
    from click.testing import CliRunner

    from mechgrade.cli.main import cli

    for args, needle in ((["export", "student", "lesson27", "-o", str(tmp_path)], "is a folder"),
                         (["export", "gradescope", "lesson27", "-o", str(tmp_path / "missing" / "a.zip")], "does not exist")):
        out = CliRunner().invoke(cli, args)
        assert out.exit_code == 2 and needle in out.output and "Traceback" not in out.output, out.output


# -- attacks on the autograder (issue 12): each failed on the code before the sandbox --------
@as_root
def test_trusted_python_ignores_a_submissions_argparse_and_conftest(autograder, lesson, tmp_path):
    """run_autograder started with the submission's folder as working directory: its
    argparse.py (imported by `python -m` before anything else) and conftest.py never run."""
    marker = tmp_path / "pwned"
    evil = f"import pathlib\npathlib.Path({str(marker)!r}).write_text(__name__)\n"
    files = reference_files(lesson, **{"argparse.py": evil, "conftest.py": evil, "pytest.ini": "[pytest]\naddopts = -p conftest\n"})
    data = autograder.run(files, cwd=autograder.root / "submission")
    assert not marker.exists(), f"submission code ran in the trusted process: {marker.read_text()}"
    assert data["score"] == 100


# One attack per run, each on top of the reference: (module it is appended to, code, the points
# it may cost). The key's path is filled in by the test.
ATTACKS = {
    "lowers its oom_score_adj": ("hooks.py", """
try:
    open("/proc/self/oom_score_adj", "w").write("0")
    if open("/proc/self/oom_score_adj").read().strip() == "0":
        raise RuntimeError("LOWERED its oom_score_adj")
except OSError:
    pass
""", None),
    "leaves a 5,000-deep scratch folder": ("induction.py", DEEP_SCRATCH, None),
    "raises 20 MB messages": ("patching.py", '\nraise ValueError("x" * 20_000_000)\n', "patching"),
    "reads a key the instructor's cache left readable": ("dla.py", """
try:
    open(KEY, "rb").read()
    raise RuntimeError("KEYREAD the instructor's cached key")
except OSError:
    pass
""", None),
}


@as_root
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_attack_costs_at_most_its_own_points_and_results_stay_bounded(attack, autograder, lesson, tmp_path, monkeypatch, request):
    from mechgrade.engine.key import AnswerKey

    # A home any user can traverse, with cache folders as an ordinary mkdir makes them (0755), as
    # /root was once setup.sh opened it (pytest's own temporary root is 0700: not there).
    open_home = Path(tempfile.mkdtemp(prefix="mechgrade-open-home-", dir="/tmp"))
    open_home.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(open_home, ignore_errors=True))
    tmp_path.chmod(0o755)
    monkeypatch.setenv("MECHGRADE_CACHE_DIR", str(open_home / ".cache" / "mechgrade"))
    key_file = AnswerKey(lesson, "embedded").save()  # as `mechgrade check` or `export` would cache it
    module, code, costs = ATTACKS[attack]
    files = reference_files(lesson)
    files[module] += f"\nKEY = {str(key_file)!r}\n" + code
    scratch = tmp_path / "tmp"  # where the worker's scratch folders go: empty again afterwards
    scratch.mkdir()
    data = autograder.run(files, env={"TMPDIR": str(scratch)})
    text = json.dumps(data)
    assert "LOWERED" not in text and "KEYREAD" not in text
    assert len((autograder.root / "results" / "results.json").read_bytes()) < 2 << 20
    assert data["score"] == points(lesson) - (points(lesson, costs) if costs else 0), \
        [t["output"][:300] for t in data["tests"] if t["score"] < t["max_score"]][:2] or data["output"]
    assert not list(scratch.iterdir()), "a worker's scratch folder was left behind"
    assert key_file.stat().st_mode & 0o777 == 0o600 and key_file.parent.stat().st_mode & 0o777 == 0o700


@as_root
def test_a_staging_race_with_a_surviving_process_gains_nothing(autograder, lesson):
    """A process of the student user left from an earlier run swaps the submission's files for
    links into the trusted side while root stages them: it is killed before staging starts,
    and nothing under source/ changes owner."""
    root = autograder.root
    account = pwd.getpwnam(USER)
    work = root / "work" / "submission"
    script = (f'end=$((SECONDS+300)); while [ $SECONDS -lt $end ]; do for f in {work}/pad*; do '
              f'[ -f "$f" ] && [ ! -L "$f" ] && rm -f "$f" 2>/dev/null && ln -s {root}/source/autograder.json "$f" 2>/dev/null; '
              'done; sleep 0.001; done')
    survivor = subprocess.Popen(["setpriv", "--reuid", str(account.pw_uid), "--regid", str(account.pw_gid), "--clear-groups",
                                 "bash", "-c", script], start_new_session=True)
    try:
        files = dict(module_sources(lesson))
        files.update({f"pad{i:05d}.txt": "x" for i in range(20_000)})
        data = autograder.run(files)
        assert survivor.poll() is not None, "the surviving process was still running after grading"
    finally:
        survivor.kill()
        survivor.wait()
    stolen = [str(p) for p in [root / "source", *(root / "source").rglob("*")] if p.lstat().st_uid != 0]
    assert not stolen, f"owned by the student after staging: {stolen[:5]}"
    assert data["score"] == 0


@as_root
def test_a_full_disk_still_gets_a_valid_results_json(autograder, lesson, tmp_path):
    """The student's scratch space and results/ share a small disk, which the submission fills."""
    disk = tmp_path / "disk"
    disk.mkdir()
    results = autograder.root / "results"
    results.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=755", "tmpfs", str(disk)], check=True)
    try:
        (disk / "results").mkdir()
        (disk / "tmp").mkdir(mode=0o1777)
        (disk / "tmp").chmod(0o1777)
        subprocess.run(["mount", "--bind", str(disk / "results"), str(results)], check=True)
        files = reference_files(lesson)
        files["sae.py"] += textwrap.dedent("""
            import os as _os
            for _place in (_os.path.dirname(_os.getcwd()), "."):  # outside its scratch if it can: nothing cleans that
                try:
                    with open(_os.path.join(_place, "filler"), "wb", buffering=0) as _f:
                        for _chunk in (1 << 20, 1 << 12, 1):  # to the last byte
                            try:
                                while True:
                                    _f.write(b"0" * _chunk)
                            except OSError as _err:
                                if _err.errno != 28:  # ENOSPC: the disk is full
                                    raise
                    break
                except OSError:
                    continue
            """)
        data = autograder.run(files, env={"TMPDIR": str(disk / "tmp")})
        assert len(data["tests"]) == sum(1 for _ in lesson.iter_cases(hidden=True))
        assert data["score"] == 100, [t["output"][:200] for t in data["tests"] if t["score"] < t["max_score"]][:2]
    finally:
        subprocess.run(["umount", str(results)], check=False)
        subprocess.run(["umount", str(disk)], check=False)
