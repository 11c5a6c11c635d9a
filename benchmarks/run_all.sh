#!/usr/bin/env bash
# Reproduce benchmarks/results/: the whole suite on generated film-like clips, then a per-thread
# profile of one end-to-end run. Run from anywhere; takes about 40 minutes on 2 CPU cores.
#
#   benchmarks/run_all.sh                 # CPU, or CUDA when torch sees a GPU
#   DEVICE=cpu benchmarks/run_all.sh      # force a device
#   MODEL=path/to/checkpoint.pt benchmarks/run_all.sh
#   QUICK=1 benchmarks/run_all.sh         # a few minutes, one repeat: to check the set-up only
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python}
DEVICE=${DEVICE:-auto}
if [[ "$DEVICE" == auto ]]; then
  DEVICE=$($PY -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
fi
NAME=${NAME:-$DEVICE}
OUT=benchmarks/results
MODEL_ARGS=()
[[ -n "${MODEL:-}" ]] && MODEL_ARGS=(--model "$MODEL")

if [[ -n "${QUICK:-}" ]]; then
  SIZES=480p FRAMES=24 REPEATS=1 MEMORY=(--memory-frames 24 --memory-scale 3) NAME="$NAME-quick"
else
  SIZES=360p,480p,720p,1080p FRAMES=96 REPEATS=3 MEMORY=(--memory-frames 96 --memory-scale 10)
fi

if [[ "$DEVICE" == cuda* ]]; then
  # GPU: half precision, channels_last and pinned memory are what the pipeline does on CUDA.
  GRID=(--render-sizes 224,320,448 --batch-sizes 8,16,32)
  KNOBS=(--knob batch_size=16 --knob batch_size=32 --knob render_size=320 --knob hints=10 --knob reference=1)
  CODECS=libx264,libx265,ffv1
  if $PY -c 'import sys; from vidcolor.media.encode import _usable_nvenc; sys.exit(0 if _usable_nvenc("h264_nvenc") else 1)'; then
    CODECS=$CODECS,h264_nvenc
  fi
else
  GRID=(--render-sizes 128,160,224,320 --batch-sizes 1,4,8)
  KNOBS=(--knob runtime=torch --knob threads=1 --knob render_size=160 --knob render_size=128 --knob batch_size=4 --knob smoothing=0 --knob verify=false --knob codec=ffv1
         --knob hints=10 --knob reference=1 --knob hints=10,reference=1)
  CODECS=libx264,libx265,ffv1
fi

$PY -m vidcolor bench --device "$DEVICE" "${MODEL_ARGS[@]}" --sizes "$SIZES" --frames "$FRAMES" \
  --repeats "$REPEATS" --warmup 1 "${GRID[@]}" --codecs "$CODECS" "${KNOBS[@]}" \
  --memory-size 480p "${MEMORY[@]}" --out "$OUT/$NAME.json"

# Where the time of one 480p run goes, thread by thread (needs py-spy: pip install py-spy).
if command -v py-spy >/dev/null; then
  $PY -m vidcolor.benchmark.profile --size 480p --frames "$FRAMES" "${MODEL_ARGS[@]}" \
    --options "{\"device\": \"$DEVICE\"}" --out "$OUT/$NAME-profile-480p.json"
  if [[ "$DEVICE" == cpu ]]; then
    $PY -m vidcolor.benchmark.profile --size 480p --frames "$FRAMES" "${MODEL_ARGS[@]}" \
      --options '{"device": "cpu", "threads": 1}' --out "$OUT/$NAME-profile-480p-threads1.json"
  fi
else
  echo "py-spy not found: profile skipped (pip install py-spy)" >&2
fi
