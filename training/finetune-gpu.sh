#!/usr/bin/env bash
# Fine-tune the whole colorizer, encoder included, on a GPU in a fixed time, starting from the
# shipped weights; write slim checkpoints (float16, no optimizer: about 10 MB each) and the log.
#
#   training/finetune-gpu.sh CORPUS OUT
#
# CORPUS: a folder of packed corpora (`python -m vidcolor.train.pack ... --out CORPUS`: one folder
# per corpus, about 47 MB for the shipped run's three). OUT receives last.pt, best.pt (by validation
# loss), log.jsonl, config.json and train.log. Needs Python with torch, numpy, opencv and tqdm;
# nothing else of vidcolor's dependencies (no PyAV).
#
# The run fits a time budget: a short probe run measures the pace of a step on this machine (data
# made on the CPU, the network on the GPU), and the real run's one-cycle schedule gets as many steps
# as fit in BUDGET_S seconds. Then the checkpoints are calibrated where they come back:
#   python -m vidcolor.train.calibrate --checkpoint OUT/last.pt --val-of CORPUS/corpus ...
# (vidcolor/models/MODEL_CARD.md, "Fine-tuning on a GPU").
#
# Settings (environment): BUDGET_S (330), DEVICE (cuda), LR (3e-4), ENCODER_LR_SCALE (0.1: the
# encoder learns at a tenth of LR), BATCH (32), CROP (144), PROBE_STEPS (30), INIT (the shipped
# weights), PYTHON (python3). The data of a step is made on one CPU core, which sets the pace on a
# GPU: two runs of different settings can share one machine (`... OUT1 & ... OUT2 & wait`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -ne 2 ]]; then
  echo "usage: training/finetune-gpu.sh CORPUS OUT" >&2
  exit 2
fi
CORPUS=$1
OUT=$2
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-330}
DEVICE=${DEVICE:-cuda}
LR=${LR:-3e-4}
ENCODER_LR_SCALE=${ENCODER_LR_SCALE:-0.1}
BATCH=${BATCH:-32}
CROP=${CROP:-144}
PROBE_STEPS=${PROBE_STEPS:-30}
INIT=${INIT:-vidcolor/models/weights/vidcolor-lite.pt}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

if (( PROBE_STEPS < 2 )); then
  echo "training/finetune-gpu.sh: expected PROBE_STEPS of 2 or more (two time stamps), found $PROBE_STEPS: raise it" >&2
  exit 2
fi
DATA=()
for d in "$CORPUS"/*/; do DATA+=(--data "${d%/}"); done
if [[ ${#DATA[@]} -eq 0 ]]; then
  echo "training/finetune-gpu.sh: expected corpus folders in $CORPUS, found none: pack them with python -m vidcolor.train.pack" >&2
  exit 2
fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COMMON=("${DATA[@]}" --init "$INIT" --finetune-encoder --device "$DEVICE" --lr "$LR" --encoder-lr-scale "$ENCODER_LR_SCALE" --batch "$BATCH" --crop "$CROP" -q)

# The probe: a validation every PROBE_STEPS/3 steps stamps the time; the pace is taken between the
# first stamp and the last, so start-up (loading the corpus, the GPU's first kernels) is left out.
every=$(( PROBE_STEPS / 3 > 0 ? PROBE_STEPS / 3 : 1 ))
$PY -m vidcolor train "${COMMON[@]}" --steps "$PROBE_STEPS" --val-every "$every" --out "$WORK/probe"
STEPS=$($PY - "$WORK/probe/log.jsonl" "$BUDGET_S" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
pace = (rows[-1]["time"] - rows[0]["time"]) / max(rows[-1]["step"] - rows[0]["step"], 1)
print(max(10, int(float(sys.argv[2]) / pace)))
EOF
)
echo "pace from the probe: $STEPS steps in ${BUDGET_S} s" | tee "$OUT/train.log"
VAL_EVERY=$(( STEPS / 10 > 0 ? STEPS / 10 : 1 ))
start=$(date +%s)
$PY -m vidcolor train "${COMMON[@]}" --steps "$STEPS" --val-every "$VAL_EVERY" --out "$WORK/run" 2>&1 | tee -a "$OUT/train.log"
echo "trained $STEPS steps in $(( $(date +%s) - start )) s" | tee -a "$OUT/train.log"
for name in last best; do
  $PY -m vidcolor.train.slim "$WORK/run/$name.pt" "$OUT/$name.pt" | tee -a "$OUT/train.log"
done
cp "$WORK/run/log.jsonl" "$WORK/run/config.json" "$OUT/"
