#!/usr/bin/env bash
# The GPU check of MANs as one prepared script (under 8 minutes on one H100 / H200, KERAS_BACKEND=jax):
#   0. the data path's samples/s per reading thread and a stand-in model that costs nothing trained from the
#      file with model.fit (bench/bench_data.py --skip-model): the rate the training loop can be fed at;
#   1. training samples/s of the 50 x 50 (resnet) and 224 x 224 (densenet161) networks, mixed precision
#      (bench/bench_model.py: train_on_batch on one batch of 128, compilation excluded), the DenseNet-161 STCM
#      started from a weights file in torchvision's published layout that the script writes itself;
#   2. the paper's 50-epoch NTU-60 schedule (batch 128, held-out validation) on an NTU-60-sized synthetic file
#      (40,000 training-side samples), 3 epochs run through train_MANs' code and extrapolated to 50
#      (bench/bench_train.py --full);
#   3. that run's best.keras loaded in fresh processes: `import mans` + keras.saving.load_model, and evaluate.py
#      on the file's xsub test side.
# Usage, from the repository root:
#   bash bench/gpu_check.sh                  the GPU check (prints its figures; a log goes to $OUT if set)
#   bash bench/gpu_check.sh --cpu-small      the same steps, tiny, on the CPU, float32, steps 2-3 beside steps 0-1
#                                            (tests/test_gpu_check.py)
#   bash bench/gpu_check.sh --fetch-wheels   download keras and the packages it needs that the device lacks
#                                            into .whl/ (Python 3.12, x86-64), to carry to a machine without pip
# On a device machine, carry .whl and begin the command with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#     .whl/*.whl && export PYTHONPATH=/tmp/site
set -euo pipefail
cd "$(dirname "$0")/.."

mode=gpu
case "${1:-}" in
  --cpu-small) mode=cpu-small ;;
  --fetch-wheels) mode=fetch ;;
  "") ;;
  *) echo "error: unknown option $1 (expected --cpu-small or --fetch-wheels)" >&2; exit 2 ;;
esac

if [ "$mode" = fetch ]; then
  versions=$(python3 -c 'import importlib.metadata as m; print(" ".join(f"{n}=={m.version(n)}" for n in ("keras", "namex", "optree")))')
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
  # shellcheck disable=SC2086
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl $versions
  exit 0
fi

export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=${OUT:-$work}/gpu_check.log
if [ "$mode" = gpu ]; then
  export KERAS_BACKEND=${KERAS_BACKEND:-jax}
  model_resnet=(--variant resnet --batch-size 128 --steps 20 --warmup 3 --mixed-precision)
  model_densenet=(--variant densenet161 --batch-size 128 --steps 10 --warmup 2 --mixed-precision)
  schedule=(--full --mixed-precision --epochs 3 --samples 1200)
  data_path=(--files 1000 --skip-model)
else
  export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow}
  # float32: bfloat16 is emulated on most CPUs, several times slower than float32. Sizes as small as each step
  # allows (the test runs this on 2 cores): DenseNet-161 at its smallest S = 32, run eagerly (tracing its
  # training step takes minutes on a CPU, one eager step seconds), 60 recordings (one per action) tiled to 30.
  model_resnet=(--variant resnet --batch-size 2 --steps 1 --warmup 1)
  model_densenet=(--variant densenet161 --size 32 --batch-size 1 --steps 1 --warmup 0 --run-eagerly)
  schedule=(--full --epochs 1 --samples 60 --full-samples 30 --batch-size 8)
  data_path=(--files 20 --batch-size 4 --batches 1 --skip-model)
fi

rates() {  # steps 0 and 1
  echo "== 0. the data path and a stand-in model that costs nothing"
  python3 bench/bench_data.py "${data_path[@]}" --folder "$work/data_path"
  echo "== 1. training samples/s of the network"
  python3 bench/bench_model.py "${model_resnet[@]}"
  python3 bench/bench_model.py --write-imagenet-weights "$work/densenet161.safetensors"
  python3 bench/bench_model.py "${model_densenet[@]}" --imagenet-weights "$work/densenet161.safetensors"
}

schedule_and_reload() {  # steps 2 and 3
  echo "== 2. the paper's NTU-60 schedule on an NTU-60-sized synthetic file"
  python3 bench/bench_train.py "${schedule[@]}" --workdir "$work"
  checkpoint=$work/full/best.keras
  data=$(ls "$work"/ntu60_sized_*.h5)
  echo "== 3. save / load / evaluate in fresh processes"
  python3 -c "import sys, mans, keras; m = keras.saving.load_model(sys.argv[1]); \
print(f'loaded {sys.argv[1]} with import mans: {m.count_params():,} parameters')" "$checkpoint"
  python3 evaluate.py "$checkpoint" --data "$data" --benchmark xsub --out "$work/evaluation"
}

started=$(date +%s)
{
  echo "== gpu_check ($mode), KERAS_BACKEND=$KERAS_BACKEND, $(date -u +%FT%TZ)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  if [ "$mode" = gpu ]; then
    rates
    schedule_and_reload
  else
    # Each step is mostly one core's work (tracing graphs, importing): steps 2-3 run beside steps 0-1 on a
    # second core, and their lines follow those of steps 0-1.
    schedule_and_reload > "$work/steps_2_3.log" 2>&1 &
    later=$!
    rates
    status=0
    wait "$later" || status=$?
    cat "$work/steps_2_3.log"
    [ "$status" -eq 0 ] || exit "$status"
  fi
  echo "== gpu_check done in $(( $(date +%s) - started )) s"
} 2>&1 | grep --line-buffered -v -E '^(WARNING: All log messages|I0000|W0000|E0000)' | tee "$log"
