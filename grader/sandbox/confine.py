"""The walls every child meets last, whatever the kind: Landlock rules where asked, a seccomp filter,
then the child's own command.

    python -I -S -B confine.py [--ipc-namespace] [--landlock [--read P]... [--write P]... [--device P]... [--abi N]] -- COMMAND...

The sandbox copies this file (standard library only) into the child's in/ and runs it with the
sandbox's interpreter after the uid drop and the rlimits, before any code of the child: it sets
no_new_privs, restricts itself with Landlock (`--landlock`), loads the filter below and execs
COMMAND, which keeps both, as does all it starts. One mechanism for every kind (bubblewrap,
namespace, landlock, none), so that any script run_in_sandbox runs is filtered.

`--landlock` is the landlock kind's only wall besides the uid (no namespaces: it is what works in a
container). Its rules, through the documented system calls (no library: three calls and three
structs, and this file must run before anything but the standard library is importable):
- files: read and execute only below the `--read` paths (the Python installation, /usr, a few
  files of /etc, the child's in/ and inputs), write only below `--write` (its working folder),
  read and write the `--device` nodes (/dev/null..., a GPU's); nothing else, /proc and /tmp included;
- TCP bind and connect denied (ABI 4), abstract UNIX sockets and signals scoped to the child's own
  processes (ABI 6); on an older kernel the seccomp filter keeps signals to the child's own pid;
- every right the kernel knows is handled, so what a newer ABI adds is denied unless granted
  (`--abi N` uses no more than ABI N, as an older kernel would: the tests' way to see one).
Without namespaces a child has no network of its own, so the filter also refuses every socket,
AF_UNIX included (`--landlock` implies it).

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
- sockets of every family but AF_UNIX (of every family under `--landlock`), answered EAFNOSUPPORT
  (what a kernel without that family says; grader/child/explain.py reads it as a network attempt):
  a child never needs a network, and kinds without a network namespace then have none either.
A system call of another ABI (i386 through int 0x80, x32) kills the process: only a deliberate
way around this filter uses one.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import stat
import struct
import sys
from typing import Callable

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
PR_SET_NAME, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 15, 22, 38, 36
REAPER_NAME = b"grader-reaper"  # its name in /proc: the grader's SIGTERM passes it by
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
CLONE, CLONE3, SOCKET, SOCKETPAIR = (56, 220), (435, 435), (41, 198), (53, 199)
# Calls that signal a process by number: (x86_64, aarch64), the argument that names the target.
SIGNALS = {"kill": ((62, 129), 0), "tgkill": ((234, 131), 0), "rt_sigqueueinfo": ((129, 138), 0),
           "rt_tgsigqueueinfo": ((297, 240), 0)}
SIGNALS_ANY = {"tkill": (200, 130), "pidfd_send_signal": (424, 424)}  # a thread id or a pidfd: any process

# <linux/landlock.h>; the three calls have the same numbers on both architectures.
LANDLOCK_CREATE_RULESET, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION, LANDLOCK_RULE_PATH_BENEATH = 1, 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_MAKE_CHAR, FS_MAKE_SOCK, FS_MAKE_BLOCK = 1 << 6, 1 << 9, 1 << 11
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
FS_ON_FILES = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # what a rule on a file may grant
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
DEVICE = FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV


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


def _only_to(nr: int, arg_offset: int, allowed: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """This call is allowed when its argument (low 32 bits: a pid_t) is one of `allowed`, else EPERM."""
    checks = [_jump(BPF_JMP | BPF_JEQ | BPF_K, value, len(allowed) - i, 0) for i, value in enumerate(allowed)]
    return [_jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, len(allowed) + 3), _load(arg_offset), *checks,
            _ret(SECCOMP_RET_ERRNO | errno.EPERM), _ret(SECCOMP_RET_ALLOW)]


def program(machine: str, ipc_namespace: bool, unix_sockets: bool = True,
            signals_to: int | None = None) -> list[tuple[int, int, int, int]]:
    """The filter for `machine` (os.uname().machine) as (code, jt, jf, k) instructions.

    `unix_sockets`: AF_UNIX sockets allowed (the other families never). `signals_to`: a pid whose
    process (and process group) alone may be signalled, for a kernel whose Landlock cannot scope signals.
    """
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
    if unix_sockets:
        prog += [_jump(BPF_JMP | BPF_JEQ | BPF_K, SOCKET[column], 0, 4),
                 _load(ARG0_LOW_OFFSET),
                 _jump(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 1, 0),
                 _ret(SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT),
                 _ret(SECCOMP_RET_ALLOW)]
    else:
        prog += _refuse(SOCKET[column], errno.EAFNOSUPPORT) + _refuse(SOCKETPAIR[column], errno.EAFNOSUPPORT)
    if signals_to is not None:
        for numbers in SIGNALS_ANY.values():
            prog += _refuse(numbers[column], errno.EPERM)
        own = (signals_to, 0, -signals_to & 0xFFFFFFFF)  # the pid, its own group (0), the group by number
        for numbers, arg in SIGNALS.values():
            prog += _only_to(numbers[column], ARG0_LOW_OFFSET + 8 * arg, own)
    return prog + [_ret(SECCOMP_RET_ALLOW)]


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi(libc) -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    version = libc.syscall(LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(version, 0)


def restrict(libc, abi: int, read: list[str], write: list[str], devices: list[str]) -> None:
    """Landlock this process: `read` paths readable and executable, `write` paths writable, `devices`
    readable and writable, nothing else; TCP, abstract sockets and signals kept in (OSError if refused)."""
    handled = FS_BY_ABI[min(abi, 5)]
    attr = _RulesetAttr(handled, (NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    ruleset = libc.syscall(LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    writable = handled & ~(FS_MAKE_CHAR | FS_MAKE_BLOCK | FS_MAKE_SOCK | FS_IOCTL_DEV)
    try:
        for paths, access in ((read, READ), (write, writable), (devices, DEVICE)):
            for path in paths:
                _allow(libc, ruleset, path, access & handled)
        if libc.syscall(LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _allow(libc, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # a folder this system does not have (/lib32): nothing to grant
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= FS_ON_FILES
        rule = _PathBeneathAttr(access, fd)
        if libc.syscall(LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def confine(ipc_namespace: bool, landlock: dict[str, list[str]] | None = None, max_abi: int | None = None) -> None:
    """no_new_privs, Landlock (when `landlock` gives its read/write/device paths; as of ABI `max_abi`
    at most, as an older kernel would) and the filter, for this process and all it will exec or start
    (OSError if refused)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.syscall.restype = ctypes.c_long
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    signals_to = None
    if landlock is not None:
        abi = min(landlock_abi(libc), max_abi or 99)
        if abi == 0:
            raise OSError(errno.EOPNOTSUPP, "Landlock is not available (Linux 5.13 or later, with landlock among its LSMs)")
        restrict(libc, abi, landlock["read"], landlock["write"], landlock["device"])
        signals_to = os.getpid() if abi < 6 else None  # exec keeps the pid: the child's own
    prog = program(os.uname().machine, ipc_namespace, unix_sockets=landlock is None, signals_to=signals_to)
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *insn) for insn in prog))
    fprog = _Fprog(len(prog), ctypes.cast(code, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) (a kernel without CONFIG_SECCOMP_FILTER?)")


def _landlock_paths(options: list[str]) -> dict[str, list[str]] | None:
    if "--landlock" not in options:
        return None
    paths: dict[str, list[str]] = {"read": [], "write": [], "device": []}
    for flag, value in zip(options, options[1:]):
        if flag.startswith("--") and flag[2:] in paths:
            paths[flag[2:]].append(value)
    return paths


def supervise(start: Callable[[], None]) -> int:
    """Run `start` (which execs the walled-in command) in a child and stay as its reaper: every
    process it leaves behind, daemonized or not, is reparented here and killed when it ends.

    What a PID namespace gives the other kinds, for the landlock kind, which has none. The child
    cannot reach this process: its own Landlock domain scopes its signals (or the filter keeps them to
    its own pid and process group), ptrace is filtered and /proc is out of its reach. Returns the
    exit status as a shell gives it: the code, or 128 + the signal that killed the command.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the grader's SIGTERM is for the student's processes
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    command = os.fork()
    if command == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setpgid(0, 0)  # its own process group: a signal to "my group" does not reach this one
        try:
            start()
        except SystemExit as e:
            sys.stderr.write(f"{e.code}\n")
            sys.stderr.flush()
        os._exit(1)
    name = ctypes.create_string_buffer(REAPER_NAME)
    libc.prctl(PR_SET_NAME, ctypes.addressof(name), 0, 0, 0)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == command:
            break
    while left := _descendants(os.getpid()):
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap_all()
    _reap_all()
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _descendants(root: int) -> list[int]:
    """root's descendants, from every process's parent in /proc (grader/sandbox/proctree.tree's walk:
    this file imports nothing but the standard library)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat_line = f.read()
            except OSError:
                continue
            ppid = int(stat_line[stat_line.rfind(b")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(name))
    found, stack = [], list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _reap_all() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def main(argv: list[str]) -> None:
    options, command = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    landlock = _landlock_paths(options)
    max_abi = int(options[options.index("--abi") + 1]) if "--abi" in options else None

    def start() -> None:
        try:
            confine(ipc_namespace="--ipc-namespace" in options, landlock=landlock, max_abi=max_abi)
        except OSError as e:
            sys.exit(f"grader sandbox: the sandbox's walls could not be raised ({os.strerror(e.errno or 0)}: "
                     f"{e.strerror}); student code is not run without them")
        os.execvp(command[0], command)

    if landlock is None:
        start()
    sys.exit(supervise(start))


if __name__ == "__main__":
    main(sys.argv[1:])
