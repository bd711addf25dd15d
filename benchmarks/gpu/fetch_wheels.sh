#!/usr/bin/env bash
# The wheels the GPU machine lacks (its image has JAX, numpy, OpenCV headless, h5py, ml-dtypes, rich,
# absl-py; not Keras): Keras and its two small pure dependencies, for the image's Python 3.12 on
# x86-64, into benchmarks/gpu/_wheels (git-ignored; carry it: a few MB, far under the 64 MiB limit).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
KERAS=$("$PY" -c "import keras; print(keras.__version__)")  # the version the toolkit is tested with
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
  -d benchmarks/gpu/_wheels "keras==$KERAS" optree namex
ls -l benchmarks/gpu/_wheels
