"""Sealed rooms (issue 19): no submission reaches another's outputs, and nothing the student's
code leaves survives its run, in every sandbox layer `mechgrade grade` and `check` use as root.

Layers, each through the real CLI as root:
- ``auto``: bubblewrap namespaces + a uid per submission (the zygote's forks share one
  bubblewrap: each must get its own /tmp, /var/tmp, /dev/shm and IPC);
- ``user``: no bubblewrap, a uid per submission, a sealed room made with unshare;
- ``swept``: the same where the kernel refuses unshare (Docker's default seccomp profile,
  imitated by ``no_unshare.py``): what the uid leaves is swept after it.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from leaks import DONOR, PIN_SHM, RECEIVER, SHOUT, TEMPFILES, clear_leftovers, keys, marker_source, with_tail
from mechgrade.sandbox import namespaces_work
from mechgrade.sandbox.rooms import writable_places
from required import needs

HERE = Path(__file__).parent
LAYERS = {"auto": ([], "namespaces"), "user": ([], "user"), "swept": ([sys.executable, str(HERE / "no_unshare.py")], "user")}
pytestmark = needs("root", "sealed rooms are made and tested as root (the uid layer needs it)")


def mechgrade(args: list[str], layer: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    wrapper, mode = LAYERS[layer]
    if mode == "namespaces" and not namespaces_work():
        pytest.fail("bubblewrap cannot build namespaces here") if os.environ.get("CI") else pytest.skip("no bubblewrap here")
    env = {**os.environ, "MECHGRADE_SANDBOX": mode}
    return subprocess.run([*wrapper, str(Path(sys.executable).parent / "mechgrade"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def shmem_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    return 0


def sysv_segments() -> set[tuple[str, str]]:
    """(key, size) of every SysV shared-memory segment on the machine."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {(cols[0], cols[3]) for cols in (line.split() for line in lines)}


def leftovers(names: tuple[str, ...]) -> list[str]:
    """Files whose name starts with one of ``names`` in the machine's writable places."""
    found = []
    for place in writable_places():
        try:
            found += [os.path.join(place, n) for n in os.listdir(place) if n.startswith(names)]
        except OSError:
            pass
    return found


@pytest.fixture(autouse=True)
def clean_slate():
    clear_leftovers()


def message_queues() -> set[str]:
    """Names of the machine's POSIX message queues (an mqueue filesystem mounted for a moment)."""
    where = tempfile.mkdtemp()
    subprocess.run(["mount", "-t", "mqueue", "mqueue", where], check=True)
    try:
        return set(os.listdir(where))
    finally:
        subprocess.run(["umount", where], check=True)
        os.rmdir(where)


class ShmemPeak:
    """The highest Shmem (kB) seen while the block runs, polled every 50 ms."""

    def __enter__(self):
        self.base = self.peak = shmem_kb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, shmem_kb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def donor_class(tmp_path_factory, reference_ws, stub_ws) -> Path:
    """A correct donor that publishes its outputs everywhere it can (first unmounting what it
    can of its room), pins 512 MB of /dev/shm and uses temporary files as correct code may, and
    the unmodified stubs reading them: graded in that order."""
    root = tmp_path_factory.mktemp("donor-class")
    with_tail(shutil.copytree(reference_ws, root / "a_donor"), DONOR)
    with_tail(root / "a_donor", PIN_SHM + TEMPFILES + SHOUT, modules=("hooks",))
    with_tail(shutil.copytree(stub_ws, root / "b_receiver"), RECEIVER)
    return root


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_stub_receiver_gets_nothing_from_a_donor_graded_before_it(layer, donor_class, tmp_path, lesson):
    segments = sysv_segments()
    with ShmemPeak() as shm:
        proc = mechgrade(["grade", "lesson27", str(donor_class), "-o", str(tmp_path / "gb.csv"), "-j", "1", "--hidden"], layer, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MGSHOUT" not in proc.stdout + proc.stderr, "a student's code wrote into the instructor's terminal"
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "gb.csv"))}
    assert float(rows["a_donor"]["total"]) == 100, "the donor must have run (and written its outputs everywhere)"
    # A solo check of the unmodified stubs scores 0 (tests/test_export.py: test_stubs_get_zero):
    # the receiver reads nothing the donor left.
    assert float(rows["b_receiver"]["total"]) == 0, f"the receiver scored from the donor's outputs in layer {layer}"
    if layer != "swept":  # without a room the file pins memory while its writer runs; swept when it ends
        assert shm.peak - shm.base < 200_000, f"shared memory held {(shm.peak - shm.base) >> 10} MB of one student's data (the room: 64 MB of files, 64 MB of SysV)"
    assert not leftovers(("mgleak-", "mgpin")), "files of the students' outlived grading"
    assert not {s for s in sysv_segments() - segments}, "SysV segments of the students' outlived grading"
    assert not keys("mgleak:"), "kernel keys of the students' outlived grading"


@pytest.mark.parametrize("layer", ["user", "swept"])
def test_the_user_layer_leaves_nothing_a_check_created(layer, make_ws, tmp_path):
    marker = f"mgmark-{os.getpid()}-{layer}"
    hooks = make_ws({})
    with_tail(hooks, marker_source(marker), modules=("hooks",))
    segments = sysv_segments()
    proc = mechgrade(["check", "lesson27", "--path", str(hooks), "-e", "hooks"], layer, tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "5 / 5" in proc.stdout.replace("\n", " ")
    assert not leftovers((marker,)), "the worker's files outlived the check"
    new = {s for s in sysv_segments() - segments if s[1] == str(8 << 20)}
    assert not new, f"the worker's SysV shared memory outlived the check: {new}"
    assert marker not in message_queues(), "the worker's POSIX message queue outlived the check"


def test_the_no_unshare_wrapper_refuses_what_docker_refuses():
    """The ``swept`` layer is only a test of the sweep if unshare is really refused there."""
    proc = subprocess.run([sys.executable, str(HERE / "no_unshare.py"), "unshare", "--ipc", "true"], capture_output=True, text=True)
    assert proc.returncode != 0 and "not permitted" in proc.stderr


def test_a_full_room_is_the_students_problem_only(make_ws, tmp_path):
    """Writing past the room's cap fails inside the student's code (ENOSPC); the case still
    runs and the machine's /dev/shm is untouched."""
    ws = make_ws({})
    with_tail(ws, PIN_SHM, modules=("hooks",))
    before = time.time()
    with ShmemPeak() as shm:
        proc = mechgrade(["check", "lesson27", "--path", str(ws), "-e", "hooks"], "user", tmp_path, timeout=300)
    assert proc.returncode == 0 and "5 / 5" in proc.stdout.replace("\n", " "), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert shm.peak - shm.base < 200_000
    assert not [p for p in leftovers(("mgpin",)) if os.stat(p).st_mtime >= before]
