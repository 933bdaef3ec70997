#!/usr/bin/env bash
# GPU measurements on a machine that has JAX (and PyTorch) but no TensorFlow, such as the borrowed
# H100/H200 of this project.
#
# FLOPs need TensorFlow, which the GPU machine lacks, so they come from a profile cache filled
# first on a TensorFlow machine (this checkout, same source: the cache is keyed on the source of
# architectures/ and of the counting code, so the GPU machine must run the same tree):
#
#   scripts/gpu_sweep.sh profiles         on a TF machine: fill $PROFILE_CACHE for both model sets
#   scripts/gpu_sweep.sh OUT_DIR          on the GPU: resnet50 rows, harness overhead, context rows
#   scripts/gpu_sweep.sh OUT_DIR zoo      on the GPU: one model per building block, JAX bf16 batch 256
#   scripts/gpu_sweep.sh OUT_DIR scaling  on the GPUs: resnet50 JAX bf16 data parallel over 1,2,4,8 GPUs
#                                         (as many as nvidia-smi lists), 128 images per GPU: the
#                                         scaling table (n_devices, scaling_efficiency)
#
# PROFILE_CACHE (default results/.profile-cache) is git-ignored: carry it to the GPU machine with
# the tree (e.g. the device tool's `carry`). Without an entry the FLOPs columns (and
# achieved_tflops, mfu) stay empty; nothing stale is ever used.
#
# Keras, namex and optree travel as wheels in .whl/ when the machine lacks them (README, "GPU").
# Writes OUT_DIR/sweep-gpu-resnet50-jax.csv (resnet50, JAX, mixed_bfloat16, batch 128/256, infer
# and train), OUT_DIR/overhead-{infer,train}.json (sweep loop vs minimal loop on the same
# compiled step) and, within the time left, OUT_DIR/sweep-gpu-context.csv (float32, torch).
set -uo pipefail
cd "$(dirname "$0")/.."
PROFILE_CACHE="${PROFILE_CACHE:-results/.profile-cache}"
ZOO_MODELS=resnext50_32x4d,mobilenet_v2,shufflenet_v2_x1_0,fcanet50,densenet121,xception,vgg16,googlenet
if [ "${1:-}" = "profiles" ]; then
  PY="${PY:-python3}"
  "$PY" -m kbench sweep --models resnet50 --profile-only --profile-cache "$PROFILE_CACHE" || exit 1
  "$PY" -m kbench sweep --models "$ZOO_MODELS" --profile-only --profile-cache "$PROFILE_CACHE" || exit 1
  exit 0
fi
OUT_DIR="${1:?usage: scripts/gpu_sweep.sh profiles | OUT_DIR [zoo|scaling]}"
WHAT="${2:-resnet50}"
mkdir -p "$OUT_DIR"
[ -d "$PROFILE_CACHE" ] || echo "warning: no $PROFILE_CACHE (run 'scripts/gpu_sweep.sh profiles' on a TF machine): FLOPs columns will be empty" >&2
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/kbench-site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/kbench-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax  # the parent never needs TensorFlow; workers set their own
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
python3 -c 'import jax, keras, torch; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__, "torch", torch.__version__)'
SECONDS=0
if [ "$WHAT" = "scaling" ]; then
  # keras.distribution.DataParallel over the first n GPUs; --batch-sizes are global batches, so
  # 128 x n keeps 128 images per GPU at every n (the weak-scaling rows scaling_efficiency compares).
  GPUS=$(nvidia-smi -L | grep -c '^GPU ')
  DEVICES=1 BATCHES=${SCALING_PER_DEVICE_BATCH:-128}
  for n in 2 4 8; do
    [ "$n" -le "$GPUS" ] || break
    DEVICES="$DEVICES,$n" BATCHES="$BATCHES,$(( ${SCALING_PER_DEVICE_BATCH:-128} * n ))"
  done
  python3 -m kbench sweep --models "${SCALING_MODELS:-resnet50}" --backend jax --precision mixed_bfloat16 \
    --devices "$DEVICES" --batch-sizes "$BATCHES" --modes infer,train \
    --out "$OUT_DIR/sweep-gpu-scaling.csv" --profile-cache "$PROFILE_CACHE" --resume --timeout 300 \
    --time-budget "${GPU_SWEEP_BUDGET_S:-540}"
  echo "total: ${SECONDS}s"
  exit 0
fi
if [ "$WHAT" = "zoo" ]; then
  # grouped conv, depthwise, channel shuffle, attention plugin, dense concat, separable, plain, inception
  python3 -m kbench sweep --models "$ZOO_MODELS" \
    --backend jax --precision mixed_bfloat16 --batch-sizes 256 --modes infer,train \
    --out "$OUT_DIR/sweep-gpu-zoo.csv" --profile-cache "$PROFILE_CACHE" --resume --timeout 180 --time-budget "${GPU_SWEEP_BUDGET_S:-540}"
  echo "total: ${SECONDS}s"
  exit 0
fi
KERAS_BACKEND=jax python3 -m kbench sweep --models resnet50 --backend jax --precision mixed_bfloat16 \
  --batch-sizes 128,256 --modes infer,train --out "$OUT_DIR/sweep-gpu-resnet50-jax.csv" \
  --profile-cache "$PROFILE_CACHE" --timeout 240
echo "required sweep: ${SECONDS}s"
for mode in infer train; do
  KERAS_BACKEND=jax timeout 150 python3 -m kbench overhead --model resnet50 --input-size 224 \
    --batch-size 128 --mode "$mode" --precision mixed_bfloat16 --iters 30 --repeats 7 \
    > "$OUT_DIR/overhead-$mode.json"
  echo "overhead $mode: $(cat "$OUT_DIR/overhead-$mode.json")"
done
echo "after overhead: ${SECONDS}s"
# Context within the time left: JAX float32, then the torch backend (eager) in bfloat16.
for args in "--backend jax --precision float32" "--backend torch --precision mixed_bfloat16"; do
  LEFT=$(( ${GPU_SWEEP_BUDGET_S:-540} - SECONDS ))
  [ "$LEFT" -gt 60 ] || break
  # shellcheck disable=SC2086
  python3 -m kbench sweep --models resnet50 $args --batch-sizes 128,256 --modes infer,train \
    --out "$OUT_DIR/sweep-gpu-context.csv" --profile-cache "$PROFILE_CACHE" --resume --timeout 180 --time-budget "$LEFT"
done
echo "total: ${SECONDS}s"
