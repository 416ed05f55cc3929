#!/usr/bin/env bash
# One GPU run of the whole evaluation (issue #4), for a lent CUDA machine with PyTorch but no
# Neo4j, no shared data and no project venv. Run from the repository root:
#
#   OUT=/some/dir bash bench/device_eval.sh
#
# Needs the exports prepared on a machine that has the data (git-ignored, so carry them):
#   dpgcn evaluate --dataset synthetic --export-dir .state/device-exports/synthetic --export-only
#   dpgcn evaluate --dataset movielens --export-dir .state/device-exports/movielens --export-only
#   dpgcn evaluate --dataset bestbuy   --export-dir .state/device-exports/bestbuy   --export-only
#
# Writes under $OUT (at most 4 files, so they all come back from the device machine):
#   device.txt                 GPU, torch version, settings of this run
#   bench_training_epoch.txt   DP-GCN vs LightGCN epoch time, same run (bench_training_epoch.py)
#   results.tgz                <dataset>/{results.md,results.json,runs.json,*.png} + logs
#   device_eval.log            this script's own log (timings, exit codes)
#
# Settings (environment): PY (python with torch; default python3), SEEDS (3), EPOCHS (empty:
# TrainConfig's default), MODELS (empty: all), EXPORTS (.state/device-exports), DATASETS
# ("synthetic movielens bestbuy"), BUDGET (seconds each dataset may run, default 360),
# BENCH_EPOCHS (10), BENCH_TIMEOUT (90 s), THREADS (CPU threads per dataset process, 4).
# The datasets run side by side (one process each, sharing the GPU); the whole script ends in
# about BUDGET + BENCH_TIMEOUT seconds at most (defaults: 450 s).
set -uo pipefail

PY=${PY:-python3}
OUT=${OUT:?set OUT to the folder for the results}
SEEDS=${SEEDS:-3}
EPOCHS=${EPOCHS:-}
MODELS=${MODELS:-}
EXPORTS=${EXPORTS:-.state/device-exports}
DATASETS=${DATASETS:-synthetic movielens bestbuy}
BUDGET=${BUDGET:-360}
BENCH_EPOCHS=${BENCH_EPOCHS:-10}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-90}
THREADS=${THREADS:-4}

mkdir -p "$OUT"
LOG="$OUT/device_eval.log"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH=. PYTHONUNBUFFERED=1 MPLBACKEND=Agg
started=$(date +%s)
log() { echo "[$(( $(date +%s) - started ))s] $*" | tee -a "$LOG"; }

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
  echo "seeds=$SEEDS epochs=${EPOCHS:-default} models=${MODELS:-all} threads=$THREADS"
  echo "datasets=$DATASETS exports=$EXPORTS budget=${BUDGET}s"
} > "$OUT/device.txt" 2>&1
log "device: $(tail -n +2 "$OUT/device.txt" | head -2 | tr '\n' ' ')"

for ds in $DATASETS; do
  if [ ! -f "$EXPORTS/$ds/graph.npz" ]; then
    log "missing export $EXPORTS/$ds (carry it; see the header of this script)"
    exit 2
  fi
done

# 1. Epoch time, alone on the machine (nothing else running), both models in the same run.
log "bench_training_epoch (--epochs $BENCH_EPOCHS)"
timeout "$BENCH_TIMEOUT" "$PY" bench/bench_training_epoch.py --epochs "$BENCH_EPOCHS" \
  > "$OUT/bench_training_epoch.txt" 2>&1
log "bench exit $?: $(grep -h 'ratio' "$OUT/bench_training_epoch.txt" | tr '\n' ' ')"

# 2. The evaluations, one process per dataset, side by side.
args=(--seeds "$SEEDS")
[ -n "$EPOCHS" ] && args+=(--epochs "$EPOCHS")
[ -n "$MODELS" ] && args+=(--models "$MODELS")
pids=()
for ds in $DATASETS; do
  log "evaluate $ds: ${args[*]}"
  OMP_NUM_THREADS=$THREADS timeout "$BUDGET" "$PY" bench/evaluate_exports.py \
    "$EXPORTS/$ds" "$WORK/$ds" "${args[@]}" > "$WORK/$ds.log" 2>&1 &
  pids+=($!)
done
set -- $DATASETS
for pid in "${pids[@]}"; do
  wait "$pid"
  rc=$?
  log "evaluate $1 exit $rc ($( [ "$rc" = 124 ] && echo 'timed out: raise BUDGET or lower SEEDS/EPOCHS' || tail -n 1 "$WORK/$1.log"))"
  shift
done

for ds in $DATASETS; do
  if [ -f "$WORK/$ds/results.json" ]; then
    "$PY" - "$WORK/$ds/results.json" <<'PY' | tee -a "$LOG"
import json, sys
d = json.load(open(sys.argv[1]))
name = sys.argv[1].split("/")[-2]
keys = ("auc", "ndcg@10", "ndcg@10_vs_oracle", "competition_map@5", "competition_blend_map@5")
for model, m in d.items():
    cells = [f"{k} {m[k]['mean']:.4f}±{m[k]['std']:.4f}" for k in keys if k in m]
    print(f"{name:9s} {model:15s} " + "  ".join(cells))
PY
  fi
done
tar czf "$OUT/results.tgz" -C "$WORK" . && log "results.tgz: $(tar tzf "$OUT/results.tgz" | wc -l) entries"
log "done in $(( $(date +%s) - started ))s"
