#!/usr/bin/env bash
# Download the wheels the GPU machine lacks, for its Python 3.12 (x86-64, manylinux), into .whl/.
#
#   benchmarks/gpu/bundle_wheels.sh [--dry-run] [--no-faiss] [--dest DIR]
#
# The GPU image (/work/.library/device/KINDS.md, "Python packages already there") has torch,
# pytorch-lightning, numpy, scipy, scikit-learn, tensorboard, tqdm, pillow, PyYAML and packaging,
# but not these ssl_ws needs (versions: the ones the CPU test suite passes with):
#
#   lightly 1.6.0               NT-Xent loss, SimCLR head       (needs hydra-core; the rest is there)
#   hydra-core 1.3.8            lightly's import                (needs omegaconf, antlr4)
#   omegaconf 2.3.1             ssl_ws configs                  (needs antlr4 4.9.*, PyYAML)
#   antlr4-python3-runtime 4.9.3   omegaconf's parser: published as an sdist only, so it is built
#                               here into a pure-Python wheel (py3-none-any) with `pip wheel`
#   faiss-cpu 1.15.1            exact kNN and retrieval indexes (optional: without it kNN uses
#                               the torch backend, on the GPU; --no-faiss leaves it out, ~30 MB)
#
# Each is fetched with --no-deps (exactly these files, one version each). The folder travels
# with the checkout: name it in the device tool's `carry` (with .fmnist, see README.md);
# benchmarks/gpu/on_device.sh installs it there with `pip install --no-index --target .site`.
# ssl_ws itself needs no wheel: run_suite.py imports it from the checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."

dest=.whl; dry=0; faiss=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry=1; shift;;
    --no-faiss) faiss=0; shift;;
    --dest) dest=$2; shift 2;;
    -h|--help) sed -n 2,24p "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done

binary=(lightly==1.6.0 hydra-core==1.3.8 omegaconf==2.3.1)
[[ $faiss == 1 ]] && binary+=(faiss-cpu==1.15.1)
sdist=(antlr4-python3-runtime==4.9.3)
target=(--python-version 3.12 --implementation cp --only-binary=:all: --no-deps
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

run() { echo "+ $*"; [[ $dry == 1 ]] || "$@"; }

run mkdir -p "$dest"
for pkg in "${binary[@]}"; do
  run python3 -m pip download -q "${target[@]}" -d "$dest" "$pkg"
done
# pure Python, sdist only on PyPI: build its wheel here (the same wheel works on any Python 3)
for pkg in "${sdist[@]}"; do
  run python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$dest" "$pkg"
done
if [[ $dry == 0 ]]; then
  ls -l "$dest"
  echo "total $(du -sh "$dest" | cut -f1); with .fmnist/ and the tree it must stay under 64 MiB a call:"
  du -shc "$dest" .fmnist 2>/dev/null | tail -1
fi
