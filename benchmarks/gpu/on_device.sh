#!/usr/bin/env bash
# One call of the device tool: install the carried wheels (once per machine), run the suite's
# stages of a GPU lease until 9 minutes are near, pack the results into $OUT.
#
#   benchmarks/gpu/on_device.sh 1     # lease 1: fit-1v, supervised(-probes), simclr(-probes), speed
#   benchmarks/gpu/on_device.sh 2     # lease 2: the 10-view fit in 5 shards, merge, supervised-10v
#   benchmarks/gpu/on_device.sh short # one 15-minute budget: fit-1v, baselines, compile, supervised-best
#   benchmarks/gpu/on_device.sh one-fit # fit-1v, simclr-refit, host (host time per step), align (device solvers)
#
# SUITE_DEADLINE (default 540 s) is run_suite.py's --deadline; SUITE_TIMEOUT (default 570 s) kills the
# suite itself, after which the results finished so far are still packed into $OUT; SUITE_ARGS are
# more options of run_suite.py (e.g. "--sup-steps 8000").
#
# Needs .whl/ (benchmarks/gpu/bundle_wheels.sh) and .fmnist/ (the Fashion-MNIST IDX files) in
# the device tool's `carry`. Call it again, within the machine's 30 s warm window, until it says
# "suite: ... stage(s)" with nothing left: stages already recorded are skipped, a stage killed at
# the 10-minute limit resumes where it stopped (fit chunks, finished training runs).
set -uo pipefail
cd "$(dirname "$0")/../.."
lease=${1:?usage: on_device.sh 1|2|short|one-fit}
if [[ ! -d .site ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target .site .whl/*.whl || exit 1
fi
export PYTHONPATH=$PWD/.site PYTHONUNBUFFERED=1 FMNIST_DIR=$PWD/.fmnist
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, lightly, omegaconf; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
pack="${OUT:-/tmp}/gpu-suite-full.tar.gz" log="${OUT:-/tmp}/suite-lease$lease.log" limit=${SUITE_TIMEOUT:-570}
timeout "$limit" python3 benchmarks/gpu/run_suite.py --scale full --device cuda --lease "$lease" \
  --deadline "${SUITE_DEADLINE:-540}" ${SUITE_ARGS:-} --pack "$pack" 2>&1 | tee "$log"
if [[ ! -f $pack ]]; then  # the suite was stopped: pack what it finished
  echo "suite stopped at $limit s; packing what finished" | tee -a "$log"
  python3 benchmarks/gpu/run_suite.py --scale full --stage none --pack "$pack"
fi
