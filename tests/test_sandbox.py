"""The sandbox (mechgrade.sandbox): what hostile student code in the worker can and cannot do,
and the trusted side's handling of trees and messages the student controls.

Worker tests run the real worker through ``StudentWorker``, inside whatever sandbox
``choose()`` builds here (as root in CI: namespaces + a fresh uid). Those that need a layer
skip, saying which, where it is missing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from mechgrade.engine.runner import StudentWorker
from mechgrade.errors import WorkspaceError
from mechgrade.sandbox import choose, namespaces_work
from mechgrade.sandbox.fs import copy_submission, remove_tree
from attacks import deep_tree
from required import missing, needs
from test_isolation import sae_module

SAE = ("sae", "sae_encode", "sae_encode_inputs", {"batch": 2, "d_model": 4, "d_sae": 8, "seed": 0})
needs_namespaces = needs("bwrap", "bubblewrap cannot create namespaces here (not installed, or user namespaces disabled)")
needs_root = needs("root", "the user layer (a dedicated uid) needs root")


# -- trees ------------------------------------------------------------------------------------------
def test_remove_tree_handles_5000_deep_unreadable_folders_and_spares_link_targets(tmp_path):
    top = deep_tree(tmp_path / "deep", 5000)
    (top / "locked").mkdir()
    (top / "locked" / "f").write_text("x")
    (top / "locked").chmod(0)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (top / "link").symlink_to(outside)
    (top / "dirlink").symlink_to(tmp_path)
    try:
        remove_tree(top)
        assert not top.exists() and outside.read_text() == "keep me"
    finally:  # never leave pytest's own cleanup a tree it cannot remove
        subprocess.run(["rm", "-rf", "--one-file-system", str(top)])


def test_copy_submission_skips_links_and_deep_folders_and_caps_size(tmp_path):
    src = tmp_path / "src"
    deep_tree(src / "deep", 40)
    (src / "a.py").write_text("x = 1\n")
    (src / "secret").symlink_to("/etc/hostname")
    (src / "dir").symlink_to("/etc")
    dest = tmp_path / "dest"
    copied = copy_submission(src, dest)
    assert [p.name for p in copied] == ["a.py"]
    assert not (dest / "secret").exists() and not (dest / "dir").exists()
    assert sum(1 for _ in dest.rglob("d")) <= 13  # cut at the depth cap
    (src / "big.bin").write_bytes(b"0" * (17 << 20))
    with pytest.raises(WorkspaceError, match="too large"):
        copy_submission(src, tmp_path / "dest2")


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_bombs_are_refused_before_the_disk_fills(tmp_path):
    from mechgrade.engine.gradebook import unzip_capped

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("hooks.py", "w", force_zip64=True) as f:  # 1 GiB of zeros, ~1 MB zipped
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                f.write(chunk)
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(WorkspaceError, match="too large"):
        unzip_capped(bomb, tmp_path / "out")
    assert sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file()) <= 64 << 20
    many = tmp_path / "many.zip"
    many.write_bytes(zip_bytes({f"f{i}.py": b"" for i in range(2_001)}))
    with pytest.raises(WorkspaceError, match="too large"):
        unzip_capped(many, tmp_path / "out2")
    escape = tmp_path / "escape.zip"
    escape.write_bytes(zip_bytes({"../../evil.py": b"x"}))
    with pytest.raises(WorkspaceError, match="outside"):
        unzip_capped(escape, tmp_path / "out3")


# -- results.json -----------------------------------------------------------------------------------
def test_results_are_bounded_and_written_on_a_full_disk(tmp_path):
    from mechgrade.export.results_file import ReservedResults, bounded_json

    huge = {"score": 0, "output": "x", "tests": [{"name": f"t{i}", "output": "y" * 20_000_000} for i in range(9)]}
    assert len(bounded_json(huge)) <= 1 << 20
    if os.geteuid() != 0:
        missing("root", "mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        out = ReservedResults(disk / "results" / "results.json")
        with open(disk / "filler", "wb") as f:  # the submission fills the disk
            with pytest.raises(OSError):
                while True:
                    f.write(b"\0" * (1 << 20))
        out.write({"score": 0, "output": "placeholder", "tests": []})
        out.write(huge)
        data = json.loads((disk / "results" / "results.json").read_text())
        assert len(data["tests"]) == 9 and data["tests"][0]["output"].endswith("[cut]")
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# -- the worker -------------------------------------------------------------------------------------
def probe(make_ws, body: str, *, timeout: float = 60, preamble: str = ""):
    """Run ``body`` as the student's sae_encode (it returns a dict of findings) in the worker."""
    ws = make_ws({"sae.py": sae_module(body, preamble)})
    with StudentWorker(ws, lesson="lesson27", model_spec="embedded") as worker:
        out = worker.call(*SAE, timeout_s=timeout)
        sandbox = worker.sandbox
    return out, sandbox


ATTEMPT = """
def attempt(fn):
    try:
        fn()
        return "succeeded"
    except Exception as err:
        return type(err).__name__
"""


@needs_namespaces
def test_the_sandboxed_worker_sees_no_home_key_reference_network_or_host_process(make_ws, tmp_path, monkeypatch):
    from mechgrade.engine.key import cache_root
    from mechgrade.spec import lesson_dir

    ref = Path(__import__("mechgrade.reference.lesson27", fromlist=["x"]).__file__).parent / "sae.py"
    key = next((lesson_dir("lesson27") / "keys").glob("*.safetensors"))
    secret = Path.home() / ".mechgrade-test-secret"
    secret.write_text("private")
    try:
        out, sandbox = probe(make_ws, f"""
            import os, socket, pathlib
            found = {{
                "home secret": attempt(lambda: open({str(secret)!r}).read()),
                "reference": attempt(lambda: open({str(ref)!r}).read()),
                "shipped key": attempt(lambda: open({str(key)!r}, "rb").read()),
                "key cache": attempt(lambda: os.listdir({str(cache_root())!r})),
                "mutants": attempt(lambda: open({str(lesson_dir("lesson27") / "mutants.toml")!r}).read()),
                "network": attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2)),
                "host pid 1": open("/proc/1/cmdline", "rb").read().split(b"\\0")[0].decode(),
                "pids": str(len([p for p in os.listdir("/proc") if p.isdigit()])),
                "write outside scratch": attempt(lambda: open({str(ref.parent / "x.py")!r}, "w")),
            }}
            return found""", preamble=ATTEMPT)
    finally:
        secret.unlink()
    assert out.ok, out.message
    found = out.value
    assert sandbox.namespaces
    assert all(found[k] != "succeeded" for k in ("home secret", "reference", "shipped key", "key cache", "mutants",
                                                 "network", "write outside scratch")), found
    assert found["host pid 1"] == "bwrap" and int(found["pids"]) <= 3, found


@needs_namespaces
def test_kill_minus_one_reaches_only_the_sandbox(make_ws):
    bystander = subprocess.Popen(["sleep", "120"])
    try:
        out, _ = probe(make_ws, "import os, signal\nos.kill(-1, signal.SIGKILL)\nreturn x")
        assert not out.ok
        assert bystander.poll() is None, "kill(-1) in the worker killed a process outside the sandbox"
    finally:
        bystander.kill()


def test_a_daemon_does_not_outlive_its_worker(make_ws, tmp_path):
    """A setsid'd grandchild that keeps writing: gone once the worker is stopped."""
    out, sandbox = probe(make_ws, """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                while True:
                    open("daemon-alive", "w").write(str(time.time()))
                    time.sleep(0.05)
            os._exit(0)
        time.sleep(0.5)
        return {"pid": str(os.getpid())}""")
    assert out.ok, out.message
    if not sandbox.isolated:
        pytest.skip("no sandbox here: a daemon of the user's own check is the user's")
    time.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-f", "mechgrade.engine.worker"], capture_output=True, text=True).stdout.split()
    mine = [p for p in leftovers if sandbox.uid is not None and os.stat(f"/proc/{p}").st_uid == sandbox.uid]
    assert not mine, f"processes of the worker's uid survived: {mine}"


@needs_root
def test_the_worker_cannot_lower_its_oom_score(make_ws):
    out, sandbox = probe(make_ws, """
        try:
            open("/proc/self/oom_score_adj", "w").write("0")
            wrote = "yes"
        except OSError as err:
            wrote = type(err).__name__
        return {"wrote": wrote, "now": open("/proc/self/oom_score_adj").read().strip()}""")
    assert out.ok, out.message
    assert sandbox.uid is not None and out.value["now"] == "1000", out.value


@needs_root
def test_a_fork_bomb_is_contained(make_ws):
    out, sandbox = probe(make_ws, """
        import os
        n = 0
        try:
            while n < 5000:
                if os.fork() == 0:
                    import time
                    time.sleep(60)
                    os._exit(0)
                n += 1
        except OSError as err:
            return {"stopped at": str(n), "by": type(err).__name__}
        return {"stopped at": str(n), "by": "nothing"}""")
    assert out.ok, out.message
    assert int(out.value["stopped at"]) <= 300 and out.value["by"] != "nothing", out.value


def test_a_deeply_nested_header_on_the_grading_channel_is_the_students_doing(make_ws):
    out, _ = probe(make_ws, """
        import os, sys
        fd = int(sys.argv[sys.argv.index("--resp-fd") + 1])
        os.write(fd, b"[" * 200000 + b"\\n")
        return x""")
    assert out.failure == "crashed" and "garbage" in out.message, out.message


def test_a_torch_function_mode_cannot_hide_leftover_hooks(make_ws):
    """The mode removes every hook during the worker's own torch calls after the function
    returns (encoding, checksums): the hooks are counted before any of that runs."""
    out, _ = probe(make_ws, """
        import gc, torch
        from torch.overrides import TorchFunctionMode
        models = [o for o in gc.get_objects() if type(o).__name__ == "TransformerBridge"]
        for model in models:
            model.add_hook("blocks.0.hook_resid_pre", lambda act, hook: act)
        class Sweeper(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                for model in models:
                    model.reset_hooks()
                return func(*args, **(kwargs or {}))
        result = torch.relu((x - b_dec) @ W_enc + b_enc)
        Sweeper().__enter__()  # armed after the student's own torch calls
        return result""")
    assert out.ok and out.hooks_left >= 1, (out.hooks_left, out.message)


def test_choose_names_the_layers_it_used():
    box = choose()
    assert (box.name == "none") == (not box.isolated)
    if os.geteuid() == 0:
        assert box.uid is not None and "user" in box.name
    if namespaces_work():
        assert box.namespaces and "namespaces" in box.name
