#!/usr/bin/env bash
# Fails if the checked-in generated code in proto/samizdat/v1 is stale.
#
# Runs scripts/gen_proto.sh itself (so the protoc invocation can never drift from the one used to
# generate the checked-in files) on a copy of the .proto files in a temporary directory, then
# compares the result file by file with proto/samizdat/v1. Names every file that differs, is
# missing, or is generated code left behind for a .proto that no longer exists.
# Needs grpcio-tools (the [dev] extra); the generated code embeds its version.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/scripts" "$tmp/proto"
cp scripts/gen_proto.sh "$tmp/scripts/"
# Only the hand-written sources go in: every .proto under proto/, at the same relative path.
while IFS= read -r -d '' f; do
  mkdir -p "$tmp/$(dirname "$f")"
  cp "$f" "$tmp/$f"
done < <(find proto -name '*.proto' -print0)
bash "$tmp/scripts/gen_proto.sh"

fail=0
# Every file the generator produces must be checked in, byte for byte.
while IFS= read -r -d '' f; do
  rel=${f#"$tmp"/}
  case $rel in
    *.proto | */__init__.py) continue ;;  # sources, and the package marker gen_proto.sh touches
  esac
  if [[ ! -f $rel ]]; then
    echo "check_proto: $rel is missing (run scripts/gen_proto.sh and commit it)" >&2
    fail=1
  elif ! cmp -s "$f" "$rel"; then
    echo "check_proto: $rel is stale (run scripts/gen_proto.sh and commit it):" >&2
    diff -u "$rel" "$f" | head -n 20 >&2 || true
    fail=1
  fi
done < <(find "$tmp/proto" -type f -print0 | sort -z)

# No generated file may outlive its .proto.
while IFS= read -r -d '' f; do
  if [[ ! -f $tmp/$f ]]; then
    echo "check_proto: $f has no .proto source any more (delete it)" >&2
    fail=1
  fi
done < <(find proto -type f \( -name '*_pb2.py' -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.py' \) \
  -print0 | sort -z)

if ((fail)); then
  echo "check_proto: generated code is out of date with proto/ (grpcio-tools $(
    python -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))'))" >&2
  exit 1
fi
echo "check_proto: generated code matches proto/"
