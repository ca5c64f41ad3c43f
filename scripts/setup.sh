#!/usr/bin/env bash
# Creates ./.venv with Python 3.11 (if missing) and installs samizdat with its [dev] extra,
# again whenever pyproject.toml changes (always under CI=true). Used by scripts/demo.sh and
# scripts/test.sh. Needs only python3.11 on PATH (or PYTHON=/path/to/python).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3.11}
export PIP_DISABLE_PIP_VERSION_CHECK=1
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 2; }

if [[ ! -x .venv/bin/python ]]; then
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or set PYTHON"
  echo "==> creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die ".venv has Python < 3.11: remove .venv and run again"

stamp=.venv/.samizdat-dev-install
want=$(.venv/bin/python -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest())')
if [[ ${CI:-} == true || ! -f $stamp || $(<"$stamp") != "$want" ]]; then
  echo "==> pip install -e '.[dev]'"
  .venv/bin/python -m pip install --quiet -e '.[dev]' || die "pip install failed"
  echo "$want" >"$stamp"
fi
