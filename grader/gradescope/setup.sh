#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (the network is up
# then, and never again). Written by `grader gradescope build`; @TORCH_REQUIREMENTS@ is filled
# from the grader's pyproject.toml, so the pins live in one place.
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"    # /autograder/source: the unpacked zip
ROOT="${GRADER_AUTOGRADER_ROOT:-/autograder}"
# Outside /autograder and readable by everyone: the sandbox runs student code as another user
# with this very interpreter (README: "as root, the sandbox user must be able to run the Python").
VENV="${GRADER_VENV:-/opt/cnn-grader-venv}"

export DEBIAN_FRONTEND=noninteractive
apt-get update
# bubblewrap: the sandbox's walls; util-linux: setpriv and unshare (drop root, the namespace walls).
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap util-linux ca-certificates
PYTHON=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    apt-get install -y --no-install-recommends python3.11 python3.11-venv   # Ubuntu 22.04's python3 is 3.10
    PYTHON=python3.11
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
# CPU wheels where PyTorch's index answers (Gradescope has no GPU, and the CUDA build is gigabytes
# larger; a "+cpu" build sorts above the same version on PyPI), else what pip's own configuration
# reaches. An extra index, not the only one: where it is unreachable, the index alone would leave a
# torchvision built for another torch. GRADER_TORCH_INDEX="" leaves it out (a machine that cannot reach it).
TORCH_INDEX="${GRADER_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
"$VENV/bin/pip" install ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} @TORCH_REQUIREMENTS@
"$VENV/bin/pip" install "$SOURCE/cnn-grader"
chmod -R a+rX "$VENV"
# pip can install a torchvision that does not import (built for another torch); no submission could
# then be graded, so the image must not be built: say why and fail.
if ! IMPORT_ERROR=$("$VENV/bin/python" -c 'import torch, torchvision' 2>&1); then
    echo "setup.sh: torch and torchvision were installed but cannot be imported in $VENV:" >&2
    echo "$IMPORT_ERROR" | tail -n 3 >&2
    echo "setup.sh: the autograder cannot grade without them; rebuild the zip with \`grader gradescope build\` from a" \
         "grader whose pyproject.toml pins a torch and torchvision that install together" >&2
    exit 1
fi

# The data (bundled, else downloaded now) and the references trained once for the budget, so no
# submission retrains them; then a probe of the sandbox, reported in the build log.
"$VENV/bin/grader" gradescope prepare --root "$ROOT"
