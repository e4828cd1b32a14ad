#!/usr/bin/env bash
# The GPU figures for BENCHMARKS.md, in one call on the lent GPU machine. Run it from a folder
# that holds grader/, reference_models/, bench/, tests/ and cifar10-jpeg.tar.xz; it writes its
# logs and JSON under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-bench}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
{ nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; date -u; } 2>&1 | tee "$OUT/device.txt"
mkdir -p data && tar -xJf cifar10-jpeg.tar.xz -C data
python3 bench/bench_train.py --data data --model LeNet5 --epochs 10 --json "$OUT/lenet5.json" 2>&1 | tee "$OUT/lenet5.txt"
python3 bench/bench_train.py --data data --model ResNet18 --epochs 2 --json "$OUT/resnet18.json" 2>&1 | tee "$OUT/resnet18.txt"
# -c /dev/null: no ini file, so the checkout around this folder does not shadow its grader package
python3 -m pytest -q -p no:cacheprovider -c /dev/null --rootdir . -m gpu tests/test_train.py 2>&1 | tee "$OUT/pytest_gpu.txt"
# Issue 14's figures: the full budget's LeNet-5 (15 epochs), ResNet-18 at batch 128, bare steps per
# mode, then a class of 50 at the full budget (CLASS_ARGS: more `grader grade` options, e.g.
# "--gpu-slots 4" or "--allow-unisolated" where the machine has no sandbox).
python3 bench/bench_train.py --data data --model LeNet5 --epochs 15 --only grader --json "$OUT/lenet5_full.json" 2>&1 | tee "$OUT/lenet5_full.txt"
python3 bench/bench_train.py --data data --model ResNet18 --epochs 2 --batch-size 128 --only grader --json "$OUT/resnet18_b128.json" 2>&1 | tee "$OUT/resnet18_b128.txt"
python3 bench/profile_gpu.py 2>&1 | tee "$OUT/profile_gpu.txt"
python3 bench/bench_class.py --students 50 --budget full --data data --workers 8 -- ${CLASS_ARGS:-} 2>&1 | tee "$OUT/class50.txt"
