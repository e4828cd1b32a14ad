#!/usr/bin/env bash
# The GPU checks and figures for BENCHMARKS.md, in one call on the lent GPU machine (no network
# there). Run it from the repository root with what it lacks carried along in .carry/ (ignored):
#   .carry/bubblewrap_*.deb      `cd .carry && apt-get download bubblewrap` on this machine
#   .carry/cifar10-jpeg.tar.xz   the real images (or cifar10-jpeg.tar.xz in the root, as before)
# It installs bubblewrap (dpkg -i as root, else unpacks it with dpkg -x and puts it on PATH), runs
# the tests marked `gpu` (the sandboxed training of the complete example under bubblewrap on CUDA
# among them: tests/test_gpu_sandbox.py) and the training benchmarks, and writes every log and
# JSON under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-bench}
mkdir -p "$OUT"
export PYTHONPATH=.:tests PYTHONUNBUFFERED=1 GRADER_GPU_TEST_OUT="$OUT"
PYTHON=${PYTHON:-python3}
{ nvidia-smi -L; $PYTHON -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; date -u; } 2>&1 | tee "$OUT/device.txt"

if ! command -v bwrap >/dev/null; then
    deb=$(ls .carry/bubblewrap_*.deb 2>/dev/null | head -n1)
    if [ -z "$deb" ]; then
        echo "no bwrap and no .carry/bubblewrap_*.deb: the bubblewrap checks will be skipped" | tee -a "$OUT/device.txt"
    elif [ "$(id -u)" = 0 ] && dpkg -i "$deb" >"$OUT/bwrap_install.txt" 2>&1; then
        :
    else
        dpkg -x "$deb" .carry/bwrap && export PATH="$PWD/.carry/bwrap/usr/bin:$PATH"
    fi
fi
{ command -v bwrap && bwrap --version; } 2>&1 | tee -a "$OUT/device.txt"

tarball=.carry/cifar10-jpeg.tar.xz
[ -f "$tarball" ] || tarball=cifar10-jpeg.tar.xz
mkdir -p data && tar -xJf "$tarball" -C data

# -c /dev/null: no ini file, so the checkout around this folder does not shadow its grader package
$PYTHON -m pytest -q -p no:cacheprovider -c /dev/null --rootdir . -m gpu tests/test_gpu_sandbox.py tests/test_train.py \
    2>&1 | tee "$OUT/pytest_gpu.txt"
$PYTHON bench/sandbox_gpu_check.py 2>&1 | tee "$OUT/sandbox_gpu_check.txt"
# Issue 14's figures: the full budget's LeNet-5 (15 epochs), ResNet-18 at batch 128, bare steps per
# mode, then a class of 50 at the full budget (CLASS_ARGS: more `grader grade` options, e.g.
# "--gpu-slots auto" or "--allow-unisolated" where the machine has no sandbox).
$PYTHON bench/bench_train.py --data data --model LeNet5 --epochs 15 --only grader --json "$OUT/lenet5_full.json" 2>&1 | tee "$OUT/lenet5_full.txt"
$PYTHON bench/bench_train.py --data data --model ResNet18 --epochs 2 --batch-size 128 --only grader --json "$OUT/resnet18_b128.json" 2>&1 | tee "$OUT/resnet18_b128.txt"
$PYTHON bench/profile_gpu.py 2>&1 | tee "$OUT/profile_gpu.txt"
$PYTHON bench/bench_class.py --students 50 --budget full --data data --workers 8 -- ${CLASS_ARGS:---gpu-slots auto} 2>&1 | tee "$OUT/class50.txt"
