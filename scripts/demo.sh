#!/usr/bin/env bash
# The main job: set up, then run a three-node TLS cluster on loopback, push a sample archive,
# wait for replication, stop a node, restore from the others and verify (scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
