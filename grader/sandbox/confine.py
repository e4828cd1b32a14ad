"""The wall every child meets last, whatever the kind: a seccomp filter, then the child's own command.

    python -I -S -B confine.py [--ipc-namespace] -- COMMAND...

The sandbox copies this file (standard library only) into the child's in/ and runs it with the
sandbox's interpreter after the uid drop and the rlimits, before any code of the child: it sets
no_new_privs, loads the filter below and execs COMMAND, which keeps the filter, as does all it
starts. One mechanism for every kind (bubblewrap, namespace, none), so that any script
run_in_sandbox runs is filtered, and the container kind (no namespaces at all) reuses it: its
Landlock rules belong in `confine`, between no_new_privs and the filter.

What the filter refuses, with an errno (student code sees an ordinary OSError, never a kill):
- channels between children, which no namespace of ours separates or which outlive the child:
  the kernel keyrings (per uid: a key one child leaves, the next child of that uid reads);
  SysV IPC and POSIX message queues unless the child has an IPC namespace of its own
  (`--ipc-namespace`: bubblewrap and the namespace kind), since without one a segment outlives
  the grader, outside every memory cap;
- calls no child needs that reach into other processes, the kernel or the host: ptrace and
  process_vm_*, perf_event_open, bpf, userfaultfd, io_uring, new or joined namespaces
  (unshare, setns, clone with CLONE_NEW* flags), mounts, modules, kexec, reboot, swap,
  accounting, the clocks and the host name;
- clone3, answered ENOSYS: its flags live in memory a filter cannot read, and glibc then falls
  back to clone, whose flags it can;
- sockets of every family but AF_UNIX, answered EAFNOSUPPORT (what a kernel without that family
  says; grader/child/explain.py reads it as a network attempt): a child never needs a network,
  and kinds without a network namespace then have none either.
A system call of another ABI (i386 through int 0x80, x32) kills the process: only a deliberate
way around this filter uses one.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

# <linux/filter.h> and <linux/bpf_common.h>: classic BPF instruction classes and modes.
BPF_LD, BPF_JMP, BPF_RET = 0x00, 0x05, 0x06
BPF_W, BPF_ABS, BPF_K = 0x00, 0x20, 0x00
BPF_JEQ, BPF_JSET = 0x10, 0x40
# <linux/seccomp.h>
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
# struct seccomp_data {int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];}, little-endian
NR_OFFSET, ARCH_OFFSET, ARG0_LOW_OFFSET = 0, 4, 16
# <sys/prctl.h>
PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 22, 38
# <linux/audit.h>: EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000  # x86_64 numbers at or above it are the x32 ABI's
# <linux/sched.h>: every CLONE_NEW* that fits clone()'s flags (CLONE_NEWTIME shares CSIGNAL's bits there).
CLONE_NEW_ANY = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
AF_UNIX = 1

# System call numbers: (x86_64 from <asm/unistd_64.h>, aarch64 from <asm-generic/unistd.h>).
# Neither architecture multiplexes SysV IPC through `ipc` (i386 does: killed as a foreign ABI).
CHANNELS = {
    "add_key": (248, 217), "keyctl": (250, 219), "request_key": (249, 218),
}
SYSV_IPC = {
    "shmget": (29, 194), "shmat": (30, 196), "shmctl": (31, 195), "shmdt": (67, 197),
    "semget": (64, 190), "semop": (65, 193), "semtimedop": (220, 192), "semctl": (66, 191),
    "msgget": (68, 186), "msgsnd": (69, 189), "msgrcv": (70, 188), "msgctl": (71, 187),
    "mq_open": (240, 180), "mq_unlink": (241, 181), "mq_timedsend": (242, 182),
    "mq_timedreceive": (243, 183), "mq_notify": (244, 184), "mq_getsetattr": (245, 185),
}
NEVER_NEEDED = {
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438), "kcmp": (312, 272),
    "perf_event_open": (298, 241), "bpf": (321, 280), "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "unshare": (272, 97), "setns": (308, 268), "chroot": (161, 51),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "move_mount": (429, 429),
    "open_tree": (428, 428), "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432),
    "fspick": (433, 433), "mount_setattr": (442, 442), "quotactl": (179, 60),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "fanotify_init": (300, 262),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "reboot": (169, 142),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89), "syslog": (103, 116),
    "settimeofday": (164, 170), "clock_settime": (227, 112), "adjtimex": (159, 171),
    "clock_adjtime": (305, 266), "sethostname": (170, 161), "setdomainname": (171, 162),
}
CLONE, CLONE3, SOCKET = (56, 220), (435, 435), (41, 198)


def _stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return code, 0, 0, k


def _jump(code: int, k: int, if_true: int, if_false: int) -> tuple[int, int, int, int]:
    """Skip `if_true` or `if_false` instructions after this one."""
    return code, if_true, if_false, k


def _load(offset: int) -> tuple[int, int, int, int]:
    return _stmt(BPF_LD | BPF_W | BPF_ABS, offset)


def _ret(action: int) -> tuple[int, int, int, int]:
    return _stmt(BPF_RET | BPF_K, action)


def _refuse(nr: int, error: int) -> list[tuple[int, int, int, int]]:
    """This call number answers -error; the accumulator (the number) is left as it was."""
    return [_jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1), _ret(SECCOMP_RET_ERRNO | error)]


def program(machine: str, ipc_namespace: bool) -> list[tuple[int, int, int, int]]:
    """The filter for `machine` (os.uname().machine) as (code, jt, jf, k) instructions."""
    if machine not in AUDIT_ARCH:
        raise OSError(errno.ENOSYS, f"no seccomp filter for {machine} (only {', '.join(AUDIT_ARCH)})")
    column = list(AUDIT_ARCH).index(machine)
    refused = {**CHANNELS, **NEVER_NEEDED, **({} if ipc_namespace else SYSV_IPC)}
    prog = [_load(ARCH_OFFSET),
            _jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH[machine], 1, 0),
            _ret(SECCOMP_RET_KILL_PROCESS),
            _load(NR_OFFSET)]
    if machine == "x86_64":
        prog += [_jump(BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, 0, 1), _ret(SECCOMP_RET_KILL_PROCESS)]
    for numbers in refused.values():
        prog += _refuse(numbers[column], errno.EPERM)
    prog += _refuse(CLONE3[column], errno.ENOSYS)
    # The checks on an argument load it over the number: each ends in its own return.
    prog += [_jump(BPF_JMP | BPF_JEQ | BPF_K, CLONE[column], 0, 4),
             _load(ARG0_LOW_OFFSET),
             _jump(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEW_ANY, 0, 1),
             _ret(SECCOMP_RET_ERRNO | errno.EPERM),
             _ret(SECCOMP_RET_ALLOW)]
    prog += [_jump(BPF_JMP | BPF_JEQ | BPF_K, SOCKET[column], 0, 4),
             _load(ARG0_LOW_OFFSET),
             _jump(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 1, 0),
             _ret(SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT),
             _ret(SECCOMP_RET_ALLOW)]
    return prog + [_ret(SECCOMP_RET_ALLOW)]


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def confine(ipc_namespace: bool) -> None:
    """no_new_privs and the filter, for this process and all it will exec or start (OSError if refused)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    prog = program(os.uname().machine, ipc_namespace)
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *insn) for insn in prog))
    fprog = _Fprog(len(prog), ctypes.cast(code, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) (a kernel without CONFIG_SECCOMP_FILTER?)")


def main(argv: list[str]) -> None:
    options, command = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    try:
        confine(ipc_namespace="--ipc-namespace" in options)
    except OSError as e:
        sys.exit(f"grader sandbox: the seccomp filter could not be installed ({os.strerror(e.errno or 0)}: "
                 f"{e.strerror}); student code is not run without it")
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
