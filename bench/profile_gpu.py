"""Where a grader.child.train step goes on a GPU: bare training steps in each mode, then a profile.

    PYTHONPATH=. python bench/profile_gpu.py   (synthetic data; no dataset needed)
"""

from __future__ import annotations

import tempfile
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from grader.child.config import TrainConfig
from grader.child.train import train
from grader.config import DataConfig
from grader.data import load_cifar10, training_data, write_synthetic
from reference_models import LeNet5, ResNet18


def bare(cls, *, cl: bool, bf16: bool, steps: int, bs: int = 64) -> float:
    """ms per step of the plainest possible loop on resident data, no grader code."""
    torch.backends.cudnn.benchmark = True
    m = cls().cuda()
    x = torch.randn(bs, 3, 32, 32, device="cuda")
    if cl:
        m, x = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (bs,), device="cuda")
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, fused=True)
    for i in range(steps + 20):
        if i == 20:
            torch.cuda.synchronize()
            t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            out = m(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps * 1e3


def main() -> None:
    print(torch.__version__, torch.cuda.get_device_name())
    for cls, steps in ((LeNet5, 300), (ResNet18, 100)):
        for cl, bf16 in ((False, False), (True, False), (True, True)):
            print(f"bare {cls.__name__:8} cl={cl!s:5} bf16={bf16!s:5}: {bare(cls, cl=cl, bf16=bf16, steps=steps):7.2f} ms/step")
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic(tmp, train=12_800, test=1_000)
        data = training_data(load_cifar10(tmp), DataConfig(train_size=12_800 - 1_000, val_size=1_000))
    cfg = TrainConfig(optimizer="sgd", lr=0.01, schedule="constant", batch_size=64, epochs=1, select="last")
    for cls in (LeNet5, ResNet18):
        h = train(cls, data, cfg, device="cuda")
        print(f"grader.child.train {cls.__name__}: {h.train_images_per_second:.0f} img/s "
              f"({64e3 / h.train_images_per_second:.2f} ms/step), {h.precision}, cl={h.channels_last}; notes: {h.notes}")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            train(cls, data, cfg, device="cuda")
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=50))
        print(p.key_averages().table(sort_by="self_cuda_time_total", row_limit=8, max_name_column_width=50))


if __name__ == "__main__":
    main()
