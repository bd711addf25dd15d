#!/usr/bin/env bash
# bench_resnet50 as one prepared command for a lent GPU machine, or as a tiny CPU smoke here.
#
# On the GPU machine (the device tool's `run`, from the repository root, the carried wheels in
# benchmarks/gpu/_wheels: see README.md):
#     bash benchmarks/gpu/device_run.sh                  # JSON + log come back under $OUT
# Here, as a smoke (32 px, 64 images, TensorFlow backend, the project's venv; numbers mean nothing):
#     SMOKE=1 PYTHON=.venv/bin/python OUT=/tmp/gpu-smoke bash benchmarks/gpu/device_run.sh
# Extra arguments go to the script (--images N, --epochs E, --workers W).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # mlwf_nb from this tree: no install needed
if [ -n "${SMOKE:-}" ]; then
  export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=3
  set -- --size 32 --batch 16 --images 64 --epochs 2 --workers 2 "$@"
else
  if ! "$PY" -c "import keras" 2>/dev/null; then  # the GPU image has JAX and OpenCV, not Keras
    wheels=(benchmarks/gpu/_wheels/*.whl)
    [ -e "${wheels[0]}" ] || { echo "no Keras on this machine and no wheels in benchmarks/gpu/_wheels:" \
      "run benchmarks/gpu/fetch_wheels.sh here and carry benchmarks/gpu/_wheels" >&2; exit 2; }
    site=$(mktemp -d)  # beside the image's own packages, never over them
    "$PY" -m pip install -q --no-deps --no-index --target "$site" "${wheels[@]}"
    export PYTHONPATH="$PYTHONPATH:$site"
  fi
  export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
fi
"$PY" -c "import sys, numpy, cv2, keras; print('python', sys.version.split()[0], 'numpy', numpy.__version__,
'opencv', cv2.__version__, 'keras', keras.__version__, 'backend', keras.backend.backend())" | tee "$OUT/env.txt"
set +e
PYTHONUNBUFFERED=1 timeout "${LIMIT_S:-540}" "$PY" -m benchmarks.gpu.bench_resnet50 "$@" 2>&1 | tee "$OUT/bench_resnet50.log"
rc=${PIPESTATUS[0]}
set -e
grep '^{' "$OUT/bench_resnet50.log" | tail -1 > "$OUT/bench_resnet50.json" || true
echo "exit $rc; result in $OUT/bench_resnet50.json"
exit "$rc"
