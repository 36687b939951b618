"""Run a command the way Docker's default seccomp profile would: ``unshare`` fails with EPERM
(so no sealed room can be made), everything else as usual. Usage: python no_unshare.py CMD...

A classic-BPF seccomp filter, installed with prctl after no_new_privs; inherited across fork
and exec by everything the command starts."""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

ARCH = {"x86_64": (0xC000003E, 272), "aarch64": (0xC00000B7, 97)}  # (AUDIT_ARCH_*, __NR_unshare)
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, EPERM = 0x7FFF0000, 0x00050000, 1
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


def install() -> None:
    arch, nr = ARCH[platform.machine()]
    program = [
        (BPF_LD_W_ABS, 0, 0, 4),          # seccomp_data.arch
        (BPF_JEQ_K, 0, 3, arch),          # another ABI: allow
        (BPF_LD_W_ABS, 0, 0, 0),          # seccomp_data.nr
        (BPF_JEQ_K, 0, 1, nr),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    code = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(code)

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(program), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0):
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


if __name__ == "__main__":
    install()
    os.execvp(sys.argv[1], sys.argv[1:])
