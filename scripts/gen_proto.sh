#!/usr/bin/env bash
# Regenerates the Python code for proto/samizdat/v1/*.proto (checked in, never edited by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc -I proto \
  --python_out=proto --pyi_out=proto --grpc_python_out=proto \
  proto/samizdat/v1/*.proto
touch proto/samizdat/v1/__init__.py
