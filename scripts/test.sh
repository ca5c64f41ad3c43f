#!/usr/bin/env bash
# The one command that sets up and runs every check of samizdat, on a fresh machine or a dev box.
#
#   scripts/test.sh                 # set up if needed, then run all checks
#   scripts/test.sh -k chunker -x   # extra arguments go to pytest
#
# Needs only Python 3.11 (python3.11 on PATH, or PYTHON=/path/to/python) and npm (under CI=true
# as root it also installs promtool with apt-get). It runs
# scripts/setup.sh (the one place that creates .venv and installs the package editable with
# its [dev] extra), installs buf with `npm ci` (package-lock.json), then runs, in order:
#
#   1. proto staleness  scripts/check_proto.sh: checked-in *_pb2* files match proto/*.proto
#   2. buf lint         proto/ against buf's STANDARD (formerly DEFAULT) rules, see buf.yaml
#   3. ruff             lint and format check of the whole repo (`ruff format .` fixes format)
#   4. mypy             every layer: core and store strict, rpc/server/client strict less the
#                       two flags that only flag untyped grpc; see [tool.mypy] in pyproject.toml
#   5. import-linter    layer contracts in .importlinter
#   6. pytest           tests/; collecting no tests at all counts as a failure
#
# Every check runs even if an earlier one failed, so one run shows every problem; the script
# exits 1 if any check failed (setup failures stop it at once). CI runs it as `.ci/run`.
set -euo pipefail
cd "$(dirname "$0")/.."

export PYTHONDONTWRITEBYTECODE=1

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
  bold=$'\033[1m' red=$'\033[31m' green=$'\033[32m' off=$'\033[0m'
else
  bold='' red='' green='' off=''
fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 2; }
hash_of() {  # sha256 of the concatenated files (sha256sum on Linux, shasum on macOS)
  if command -v sha256sum >/dev/null; then cat "$@" | sha256sum; else cat "$@" | shasum -a 256; fi \
    | cut -d' ' -f1
}

# ---------------------------------------------------------------------------------- setup
bash scripts/setup.sh || exit 2
# shellcheck disable=SC1091
source .venv/bin/activate

command -v npm >/dev/null || die "npm not found: install Node.js (it provides buf for proto lint)"
npm_stamp=node_modules/.samizdat-npm-ci
want=$(hash_of package.json package-lock.json)
if [[ ${CI:-} == true || ! -f $npm_stamp || $(<"$npm_stamp") != "$want" ]]; then
  say "npm ci (buf)"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
  echo "$want" >"$npm_stamp"
fi

# promtool unit-tests deploy/prometheus (tests/ops/test_deploy.py). CI (root) installs it from
# Debian's `prometheus` package (about 35 s); elsewhere those tests say they were skipped.
if [[ ${CI:-} == true && $(id -u) == 0 ]] && ! command -v promtool >/dev/null \
  && command -v apt-get >/dev/null; then
  say "apt-get install prometheus (promtool)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends prometheus >/dev/null; } \
    || echo "test.sh: could not install promtool; the rule tests will be skipped" >&2
fi

# --------------------------------------------------------------------------------- checks
failed=()
run() {  # run NAME CMD...: run one check, time it, remember a failure and go on
  local name=$1 start=$SECONDS rc=0
  shift
  say "$name"
  "$@" || rc=$?
  if ((rc)); then
    failed+=("$name")
    printf '%s--- %s FAILED (exit %d, %ds)%s\n' "$red" "$name" "$rc" $((SECONDS - start)) "$off"
  else
    printf -- '--- %s ok (%ds)\n' "$name" $((SECONDS - start))
  fi
}

import_contracts() {
  lint-imports --no-cache --no-logo
}

pytest_check() {
  local rc=0
  pytest "$@" || rc=$?
  if ((rc == 5)); then
    echo "pytest collected no tests: that is a failure, not a pass" >&2
  fi
  return "$rc"
}

run "proto staleness (scripts/check_proto.sh)" scripts/check_proto.sh
run "buf lint" node_modules/.bin/buf lint
run "ruff check" ruff check --output-format=concise .
run "ruff format --check" ruff format --check .
run "mypy" mypy
run "import-linter" import_contracts
run "pytest" pytest_check "$@"

if ((${#failed[@]})); then
  printf '\n%sFAILED:%s\n' "$red" "$off" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
printf '\n%sall checks passed%s\n' "$green" "$off"
