"""Device check: can a sandboxed child use CUDA, under each isolation that works on this machine?

Run on a GPU machine: `python bench/sandbox_gpu_check.py`. For each isolation kind it runs a child
that allocates 1 GiB on the GPU and sums it; the memory watchdog must not count device memory,
and the sandbox must show the pinned GPU's /dev/nvidia* nodes (run_in_sandbox(cuda=True)). Prints one line per kind.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.errors import SandboxError  # noqa: E402
from grader.sandbox.detect import detect_isolation  # noqa: E402
from grader.sandbox.isolation import KINDS  # noqa: E402
from grader.sandbox.process import Limits, Phase, run_in_sandbox  # noqa: E402

CHILD = '''
import json, os
import torch
ok = torch.cuda.is_available()
value = None
if ok:
    x = torch.ones(2**28, device="cuda")  # 1 GiB on the device
    value = float(x.sum().item())
json.dump({"cuda": ok, "value": value, "uid": os.getuid(),
           "device": torch.cuda.get_device_name(0) if ok else ""}, open("out/result.json", "w"))
'''


def main() -> None:
    script = Path(tempfile.mkdtemp()) / "child.py"
    script.write_text(CHILD)
    for kind in KINDS:
        try:
            iso = detect_isolation(prefer=kind)
        except SandboxError as e:
            print(f"{kind}: unavailable: {e}")
            continue
        r = run_in_sandbox(script, phases=[Phase("main", 240)], isolation=iso, limits=Limits(memory_bytes=3 * 2**30),
                           cuda=True)
        print(f"{kind}: status={r.status} detail={r.detail!r} payload={r.payload} seconds={r.seconds:.1f}")
        if r.status != "ok":
            print(r.stderr_tail(8))


if __name__ == "__main__":
    main()
