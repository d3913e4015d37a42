#!/usr/bin/env bash
# Build FMNIST-INR for the paper benchmarks (issue 8) with `ssl-ws fit`.
#
#   benchmarks/paper/build_data.sh [--scale table0|mini|small|full] [--recipe siren|dwsnets|both]
#                                  [--train N --val N --test N --views V] [--device cpu|cuda] [--out DIR]
#
# Stores land in data/fmnist-inr-<recipe>-<scale>/ (data/ is git-ignored), or in DIR with --out (one
# recipe; keep big stores outside the repository, e.g. /work/data/fmnist-dwsnets-small); the fit log
# (PSNR summary, fitting time) in benchmarks/paper/logs/fit-<recipe>-<scale>.log.
#
# Views: training objects get V views, validation and test objects one
# (`ssl-ws fit --views V --eval-views 1`, issue 8's data set); evaluation also asks for
# view 0 only (`data.eval_max_views=1`, `--max-views 1`, passed by run_tables.py).
#
# Scales (objects per split; the first train+val+test images of Fashion-MNIST, split by
# object and stratified by label by `ssl-ws fit --split`):
#   table0 : 500 / 100 / 300, 1 view   (what TABLE0.md was measured on, 2-core CPU)
#   mini   : 500 / 100 / 300, 10 train views: the 2-core CPU scale of the paper tables (TABLES-mini.md)
#   small  : 2000 / 1000 / 2000, 10 views (issue 8's CPU subset)
#   full   : 55000 / 5000 / 10000, 10 views (the DWSNets split sizes; needs a GPU)
set -euo pipefail
cd "$(dirname "$0")/../.."

scale=small; recipe=both; device=""; train=""; val=""; test=""; views=""; out_dir=""
data_dir=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) scale=$2; shift 2;;
    --recipe) recipe=$2; shift 2;;
    --train) train=$2; shift 2;;
    --val) val=$2; shift 2;;
    --test) test=$2; shift 2;;
    --views) views=$2; shift 2;;
    --device) device=$2; shift 2;;
    --out) out_dir=$2; shift 2;;
    --data-dir) data_dir=$2; shift 2;;
    -h|--help) sed -n 2,24p "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
case "$scale" in
  table0) d=(500 100 300 1);;
  mini)   d=(500 100 300 10);;
  small)  d=(2000 1000 2000 10);;
  full)   d=(55000 5000 10000 10);;
  *) echo "unknown scale $scale (table0|mini|small|full)" >&2; exit 2;;
esac
train=${train:-${d[0]}}; val=${val:-${d[1]}}; test=${test:-${d[2]}}; views=${views:-${d[3]}}
limit=$((train + val + test))
recipes=("$recipe"); [[ "$recipe" == both ]] && recipes=(siren dwsnets)
if [[ -n "$out_dir" && "$recipe" == both ]]; then echo "--out needs one --recipe (siren or dwsnets)" >&2; exit 2; fi
mkdir -p benchmarks/paper/logs
for r in "${recipes[@]}"; do
  out=${out_dir:-data/fmnist-inr-$r-$scale}
  if [[ -f $out/meta.json ]]; then echo "exists: $out (skipped)"; continue; fi
  cmd=(ssl-ws fit --source fashion-mnist --data-dir "$data_dir" --recipe "$r" --views "$views" --eval-views 1
       --limit "$limit" --split "$train,$val,$test" --out "$out")
  [[ -n "$device" ]] && cmd+=(--device "$device")
  echo "+ ${cmd[*]}"
  start=$(date +%s)
  # a killed fit resumes from its saved chunks when run again
  "${cmd[@]}" 2>&1 | tr '\r' '\n' | grep -v 'INR/s' | tee "benchmarks/paper/logs/fit-$r-$scale.log"
  echo "wall-clock $(( $(date +%s) - start )) s" | tee -a "benchmarks/paper/logs/fit-$r-$scale.log"
done
