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
