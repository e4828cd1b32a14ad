"""A GPU for a sandboxed child: which NVIDIA device nodes and driver libraries it is shown, and how
much GPU memory it holds (for the watchdog in grader/sandbox/process.py).

What a child that trains on CUDA is shown, under bubblewrap and under the namespace kind alike
(`gpu_access`): /dev/nvidiactl, /dev/nvidia-uvm, /dev/nvidia-uvm-tools and /dev/nvidia-caps when
present, /dev/nvidiaN for the GPUs it is pinned to and no other, the driver's user-space libraries
(libcuda, libnvidia-ml, libnvidia-ptxjitcompiler, ...) read-only at their own paths, and /sys and
/proc/driver/nvidia read-only (CUDA reads the PCI topology and the driver's parameters there). A
child that does not train on CUDA is shown none of these. The CUDA runtime, cuDNN and cuBLAS come
with the torch wheel, inside the Python installation the child already sees.

Which GPUs a child is pinned to (`pinned_gpus`) comes from the parent's CUDA_VISIBLE_DEVICES (set
per worker by the executor or by Ray): indices count GPUs in PCI bus order (as nvidia-smi does),
"GPU-..." UUIDs name one; unset, every GPU. Inside, CUDA_VISIBLE_DEVICES names the pinned GPUs by
UUID (an index could name another GPU once the others are missing), or is left unset where the
driver does not say the UUIDs.

GPU memory is read from NVML through pynvml when it is importable, else from `nvidia-smi
--query-compute-apps`; never through torch.cuda in the parent, which would create a CUDA context
(hundreds of MB on every GPU) in the grader and sees only its own process's memory anyway.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from grader.errors import SandboxError

# Nodes every CUDA process opens (nvidiactl) or may open (unified memory, its tools, MIG capabilities).
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-caps")
REQUIRED_NODES = ("nvidiactl",)
# The driver's user-space libraries a CUDA process loads (the torch wheel brings the rest).
DRIVER_LIBRARIES = ("libcuda.so*", "libcudadebugger.so*", "libnvidia-ml.so*", "libnvidia-ptxjitcompiler.so*",
                    "libnvidia-nvvm.so*", "libnvidia-gpucomp.so*")
# Where distributions and the NVIDIA container toolkit put them, besides what ldconfig knows.
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/wsl/lib")
# Read-only system views CUDA reads: PCI topology (NUMA, P2P) and the driver's parameters.
DRIVER_VIEWS = ("/sys", "/proc/driver/nvidia")
SMI_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GpuAccess:
    """What a child is shown of the GPU; empty for a child that does not use CUDA."""

    devices: tuple[str, ...] = ()
    """Device nodes (or the /dev/nvidia-caps folder) bound read-write at the same path."""
    libraries: tuple[str, ...] = ()
    """Driver libraries bound read-only at the same path."""
    visible: str = ""
    """CUDA_VISIBLE_DEVICES inside (UUIDs of the pinned GPUs); '' leaves it unset."""

    @property
    def library_path(self) -> str:
        """LD_LIBRARY_PATH inside: the folders of the driver libraries, for a loader cache that lacks them."""
        return ":".join(dict.fromkeys(str(Path(lib).parent) for lib in self.libraries))


def gpu_access(root: Path, gpus: Sequence[int], library_dirs: Sequence[str]) -> GpuAccess:
    """The nodes and libraries a child pinned to `gpus` (device minors: /dev/nvidiaN) needs, as found
    under `root` ('/' in use; a fake tree in tests); empty when `gpus` is."""
    if not gpus:
        return GpuAccess()
    dev = root / "dev"
    missing = [name for name in REQUIRED_NODES if not (dev / name).exists()]
    missing += [f"nvidia{n}" for n in gpus if not (dev / f"nvidia{n}").exists()]
    if missing:
        raise SandboxError(f"the child is to train on CUDA but /dev/{missing[0]} is missing; check the NVIDIA driver "
                           "(nvidia-smi) or CUDA_VISIBLE_DEVICES, or grade with --device cpu")
    nodes = [name for name in CONTROL_NODES if (dev / name).exists()] + [f"nvidia{n}" for n in sorted(set(gpus))]
    uuids = _uuids_by_minor(root)
    visible = ",".join(uuids[n] for n in gpus) if all(n in uuids for n in gpus) else ""
    return GpuAccess(tuple(f"/dev/{name}" for name in nodes), _driver_libraries(root, library_dirs), visible)


def _driver_libraries(root: Path, library_dirs: Sequence[str]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for folder in dict.fromkeys(library_dirs):
        host = root / folder.lstrip("/")
        for pattern in DRIVER_LIBRARIES:
            for path in sorted(host.glob(pattern)):
                if path.is_file():  # a link to a file counts; a dangling link does not
                    found["/" + str(path.relative_to(root))] = None
    return tuple(found)


def _gpu_info(root: Path) -> list[dict[str, str]]:
    """The driver's description of each GPU (/proc/driver/nvidia/gpus/BUS/information), in PCI bus order."""
    infos = []
    for folder in sorted((root / "proc/driver/nvidia/gpus").glob("*")):
        try:
            text = (folder / "information").read_text()
        except OSError:
            continue
        infos.append({k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())})
    return infos


def _uuids_by_minor(root: Path) -> dict[int, str]:
    return {int(i["Device Minor"]): i["GPU UUID"] for i in _gpu_info(root)
            if i.get("Device Minor", "").isdigit() and i.get("GPU UUID")}


def pinned_gpus(root: Path, visible: str | None) -> tuple[int, ...]:
    """The device minors a child may use, from the parent's CUDA_VISIBLE_DEVICES (`visible`)."""
    present = sorted(int(m.group(1)) for p in (root / "dev").glob("nvidia*") if (m := re.fullmatch(r"nvidia(\d+)", p.name)))
    if visible is None:
        return tuple(present)
    infos = _gpu_info(root)
    in_bus_order = [int(i["Device Minor"]) for i in infos if i.get("Device Minor", "").isdigit()] or present
    by_uuid = {uuid: minor for minor, uuid in _uuids_by_minor(root).items()}
    minors: list[int] = []
    for token in (t.strip() for t in visible.split(",")):
        if token.lstrip("-").isdigit():
            if int(token) < 0 or int(token) >= len(in_bus_order):
                break  # CUDA too stops at the first index that is not a GPU
            minors.append(in_bus_order[int(token)])
        elif token in by_uuid:
            minors.append(by_uuid[token])
        elif token:
            raise SandboxError(f"CUDA_VISIBLE_DEVICES names {token!r}, which the sandbox cannot pin a child to (MIG "
                               "instances and short UUIDs are not supported); use GPU indices or full GPU-... UUIDs")
    return tuple(dict.fromkeys(minors))


def driver_library_dirs(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Folders that may hold the driver's libraries here: the loader cache's, LD_LIBRARY_PATH's, the usual ones."""
    cached: list[str] = []
    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None)
    if ldconfig:
        try:
            listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=SMI_TIMEOUT_S).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        cached = [str(Path(line.split(" => ")[-1].strip()).parent) for line in listing.splitlines()
                  if " => " in line and ("libcuda" in line or "libnvidia" in line)]
    extra = [d for d in environ.get("LD_LIBRARY_PATH", "").split(":") if d.startswith("/")]
    return tuple(dict.fromkeys([*cached, *extra, *LIBRARY_DIRS]))


def host_gpu_access(cuda: bool, environ: Mapping[str, str]) -> GpuAccess:
    """What a child is shown on this machine: the GPUs CUDA_VISIBLE_DEVICES pins it to, or nothing."""
    if not cuda:
        return GpuAccess()
    root = Path("/")
    return gpu_access(root, pinned_gpus(root, environ.get("CUDA_VISIBLE_DEVICES")), driver_library_dirs(environ))


# ---- GPU memory, for the watchdog ----------------------------------------------------------------


@dataclass(frozen=True)
class GpuProcess:
    """One process's memory on one GPU, as the driver reports it."""

    pid: int
    used_bytes: int
    gpu_total_bytes: int
    """The memory of the GPU it holds it on."""


GpuReader = Callable[[], Sequence[GpuProcess]]
"""Every compute process on every GPU of the machine; raises when the driver cannot be read."""


@dataclass(frozen=True)
class GpuUse:
    """What a child's processes hold on the GPUs."""

    used_bytes: int
    gpu_total_bytes: int
    """The largest GPU it holds memory on (0 when it holds none)."""


def child_gpu_use(rows: Sequence[GpuProcess], pids: Sequence[int]) -> GpuUse:
    """Sum `rows` over the child's processes (host PIDs, as the parent sees them)."""
    mine = [r for r in rows if r.pid in set(pids)]
    return GpuUse(sum(r.used_bytes for r in mine), max((r.gpu_total_bytes for r in mine), default=0))


def default_gpu_reader() -> tuple[GpuReader | None, str]:
    """NVML through pynvml, else nvidia-smi; (None, why) when neither is here."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            return (lambda: _nvml_rows(pynvml)), ""
        except Exception as e:  # no driver, or an NVML that does not match it
            note = f"NVML could not start ({type(e).__name__})"
    else:
        note = "pynvml is not installed"
    smi = shutil.which("nvidia-smi")
    if smi:
        return (lambda: _smi_rows(smi)), ""
    return None, f"GPU memory is not watched: {note} and nvidia-smi is missing (pip install nvidia-ml-py)"


def _nvml_rows(nvml) -> list[GpuProcess]:
    rows = []
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        total = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
        for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            rows.append(GpuProcess(int(p.pid), int(p.usedGpuMemory or 0), total))
    return rows


def _smi_rows(smi: str) -> list[GpuProcess]:
    def query(what: str) -> list[list[str]]:
        out = subprocess.run([smi, f"--query-{what}", "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=SMI_TIMEOUT_S, check=True).stdout
        return [[f.strip() for f in line.split(",")] for line in out.splitlines() if line.strip()]

    totals = {uuid: int(mib) * 2**20 for uuid, mib in query("gpu=uuid,memory.total")}
    return [GpuProcess(int(pid), int(mib) * 2**20, totals.get(uuid, 0))
            for pid, mib, uuid in query("compute-apps=pid,used_memory,gpu_uuid") if mib.isdigit()]


__all__ = ["DRIVER_VIEWS", "GpuAccess", "GpuProcess", "GpuReader", "GpuUse", "child_gpu_use", "default_gpu_reader",
           "driver_library_dirs", "gpu_access", "host_gpu_access", "pinned_gpus"]
