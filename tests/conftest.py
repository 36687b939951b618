"""Shared fixtures: the embedded model booted once, and workspaces built from the reference."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Keys computed by the tests go to a scratch cache, never the user's; one per test run, shared
# with the pytest runs that tests start in subprocesses.
if not os.environ.get("MECHGRADE_TEST_CACHE_DIR"):
    os.environ["MECHGRADE_TEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="mechgrade-test-cache-")
    os.environ["MECHGRADE_CACHE_DIR"] = os.environ["MECHGRADE_TEST_CACHE_DIR"]

import pytest


def pytest_sessionstart(session) -> None:
    """The security tests make 5,000-deep folders. One left in pytest's temporary root by an
    interrupted run would crash pytest's own cleanup (it recurses), now or in a later run, so
    such leftovers go first, removed by GNU rm, which walks by descriptor. Only what pytest
    would remove anyway: abandoned ``garbage-*`` folders and numbered runs past its three."""
    import getpass
    import subprocess

    root = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
    runs = sorted(root.glob("pytest-[0-9]*"), key=lambda p: int(p.name.split("-")[1]))
    for old in [*root.glob("garbage-*"), *runs[:-3]]:
        if (old / ".lock").exists():  # a session still running holds it
            continue
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(old)], capture_output=True)

# MECHGRADE_TEST_KEY_SHIFT=0.25 runs the whole session against the shipped key as another CPU
# might have computed it (tests/keyshift.py): the suite must not depend on the CPU that made it.
if os.environ.get("MECHGRADE_TEST_KEY_SHIFT"):
    from keyshift import write_shifted_key

    write_shifted_key(Path(os.environ["MECHGRADE_TEST_CACHE_DIR"]), fraction=float(os.environ["MECHGRADE_TEST_KEY_SHIFT"]))

from mechgrade.spec import load_lesson
from mechgrade.workspace import module_sources

LESSON = "lesson27"


@pytest.fixture(scope="module")
def shifted_key(tmp_path_factory):
    """For this module: a key cache holding the shipped key shifted within tolerance (tests/keyshift.py)."""
    from keyshift import assert_believed, write_shifted_key

    cache = tmp_path_factory.mktemp("shifted-key-cache")
    path = write_shifted_key(cache)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MECHGRADE_CACHE_DIR", str(cache))
        assert_believed()
        yield path


@pytest.fixture(scope="session")
def lesson():
    return load_lesson(LESSON)


@pytest.fixture(scope="session")
def model():
    from mechgrade.models import load_model

    return load_model("embedded")


def write_workspace(directory: Path, *, solutions: bool, overrides: dict[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in module_sources(load_lesson(LESSON), solutions=solutions).items():
        (directory / name).write_text(text)
    for name, text in (overrides or {}).items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture(scope="session")
def reference_ws(tmp_path_factory) -> Path:
    return write_workspace(tmp_path_factory.mktemp("reference"), solutions=True)


@pytest.fixture(scope="session")
def stub_ws(tmp_path_factory) -> Path:
    return write_workspace(tmp_path_factory.mktemp("stubs"), solutions=False)


@pytest.fixture
def make_ws(tmp_path):
    """make_ws(overrides) -> a reference workspace with some modules replaced."""

    def make(overrides: dict[str, str]) -> Path:
        return write_workspace(tmp_path / "ws", solutions=True, overrides=overrides)

    return make


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A GPT-2-architecture checkpoint with random weights and GPT-2's full tokenizer, saved
    locally: the real-GPT-2 code path without a download."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from mechgrade.models.tokenizer import gpt2_tokenizer

    path = tmp_path_factory.mktemp("tiny-gpt2")
    cfg = GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=256)
    GPT2LMHeadModel(cfg).save_pretrained(path)
    gpt2_tokenizer().save_pretrained(path)
    return path


KEY_AS_LIMIT = 12 << 30  # bytes of address space: room to measure a regression, none to take the machine down


@pytest.fixture(scope="session")
def tiny_gpt2_key(tiny_gpt2_dir) -> dict:
    """The tiny GPT-2's full key (every case, every mutant) filled into the session's cache by a
    child process, which reports its peak RSS in bytes ({"returncode", "peak", "stderr"}). Its
    address space is capped, so that a reference or mutant materialising a [d_vocab, d_vocab]
    matrix (10 GB at GPT-2's 50,257 tokens) cannot take the test run down with the machine.
    Tests that need this key then find it cached."""
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({KEY_AS_LIMIT}, {KEY_AS_LIMIT}))\n"
            "from mechgrade.spec import load_lesson\nfrom mechgrade.engine.key import AnswerKey\n"
            f"lesson = load_lesson('lesson27'); AnswerKey(lesson, {str(tiny_gpt2_dir)!r}).fill(lesson.iter_cases(hidden=True))\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    peak = int(done.stdout.split()[-1]) if done.returncode == 0 else None
    return {"returncode": done.returncode, "peak": peak, "stderr": done.stderr[-2000:]}


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# -- the exported Gradescope autograder: one zip and one setup.sh per session --------------------
@pytest.fixture(scope="session")
def autograder_zip(tmp_path_factory) -> Path:
    from mechgrade.export.gradescope import export_gradescope

    out = tmp_path_factory.mktemp("export") / "autograder.zip"
    export_gradescope("lesson27", out)
    return out


@pytest.fixture(scope="session")
def autograder(autograder_zip):
    """The zip unpacked into a root like /autograder and set up by its setup.sh (as root)."""
    from gradescope_root import Autograder, make_root, setup, unpack

    if os.geteuid() != 0:
        from required import missing

        missing("root", "setup.sh creates a user and sets ownership: needs root, as on Gradescope")
    root = make_root()
    unpack(autograder_zip, root)
    setup(root)
    yield Autograder(root)
    shutil.rmtree(root, ignore_errors=True)
