"""The last wall of a sealed room: a seccomp filter, installed in the worker just before any
student code, that refuses the system calls which could undo the room or reach past it.

- mounts (``mount``, ``umount2``, ``pivot_root`` and the new mount API): a worker that made
  its room in a user namespace of its own (an ordinary instructor's `grade`) holds
  CAP_SYS_ADMIN over the room's mounts and could unmount them, uncovering the folders every
  fork of the zygote shares;
- new namespaces (``unshare``, ``setns``, and ``clone`` with a namespace flag; ``clone3``
  answers ENOSYS, so the C library falls back to ``clone``, whose flags a filter can read);
- the kernel keyrings (``add_key``, ``request_key``, ``keyctl``): they belong to no mount or
  IPC namespace, and a key made readable by all is a channel to every later student;
- any other ABI than the machine's own (32-bit or x32 calls), which would get past the table.

Everything else is allowed, as in Docker's default profile, whose list of refused calls this
follows. ``no_new_privs`` is set first (the kernel requires it of an unprivileged process),
and the filter is inherited by every process and thread the worker starts.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# (AUDIT_ARCH_*, {name: number}) per machine; the new mount API's numbers are shared.
_COMMON = {"open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
           "mount_setattr": 442, "clone3": 435}
ARCHES = {
    "x86_64": (0xC000003E, {"mount": 165, "umount2": 166, "pivot_root": 155, "unshare": 272, "setns": 308, "add_key": 248,
                            "request_key": 249, "keyctl": 250, "clone": 56, **_COMMON}),
    "aarch64": (0xC00000B7, {"mount": 40, "umount2": 39, "pivot_root": 41, "unshare": 97, "setns": 268, "add_key": 217,
                             "request_key": 218, "keyctl": 219, "clone": 220, **_COMMON}),
}
REFUSED = ("mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
           "mount_setattr", "unshare", "setns", "add_key", "request_key", "keyctl")
# CLONE_NEWTIME | NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_NAMESPACES = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
X32_BIT = 0x40000000

LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
OFF_NR, OFF_ARCH, OFF_ARG0 = 0, 4, 16  # struct seccomp_data (little-endian: arg 0's low word)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def program(machine: str | None = None) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions: check the ABI, then the call."""
    machine = machine or platform.machine()
    arch, numbers = ARCHES[machine]
    deny_all = (RET_K, 0, 0, RET_ERRNO | errno.EPERM)
    out = [(LD_W_ABS, 0, 0, OFF_ARCH), (JEQ_K, 1, 0, arch), deny_all, (LD_W_ABS, 0, 0, OFF_NR)]
    if machine == "x86_64":
        out += [(JGE_K, 0, 1, X32_BIT), deny_all]
    for name in REFUSED:
        out += [(JEQ_K, 0, 1, numbers[name]), deny_all]
    out += [(JEQ_K, 0, 1, numbers["clone3"]), (RET_K, 0, 0, RET_ERRNO | errno.ENOSYS)]
    # clone: refused when its flags (argument 0) ask for a namespace.
    out += [(JEQ_K, 0, 3, numbers["clone"]), (LD_W_ABS, 0, 0, OFF_ARG0), (JSET_K, 0, 1, CLONE_NAMESPACES), deny_all]
    out.append((RET_K, 0, 0, RET_ALLOW))
    return out


def confine() -> None:
    """Install the filter on this process (and all it will start); irrevocable."""
    code = b"".join(struct.pack("HBBI", *ins) for ins in program())
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _Prog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"the worker's system-call filter could not be installed: {errno.errorcode.get(err, err)}")
