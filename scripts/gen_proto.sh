#!/usr/bin/env bash
# Generate the Python protobuf/gRPC modules from proto/ into OUT_DIR.
#
#   scripts/gen_proto.sh OUT_DIR          (e.g. scripts/gen_proto.sh gen/python)
#   PYTHON=/path/to/python scripts/gen_proto.sh OUT_DIR
#
# PYTHON defaults to the repository's .venv/bin/python and must have
# grpcio-tools and mypy-protobuf installed. The modules import as
# `jericommerce.loyalty.v1.customer_pb2`, `..customer_service_pb2_grpc`, etc.
# once OUT_DIR is on sys.path. OUT_DIR/jericommerce is replaced on each run
# (so no stale module survives a renamed or deleted .proto); nothing else in
# OUT_DIR is touched. Relative paths are taken from the current directory.
set -euo pipefail

usage() {
  echo "usage: $0 OUT_DIR" >&2
  exit 2
}
[[ $# -eq 1 && -n "$1" ]] || usage

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo_root/.venv/bin/python}"
# A relative PYTHON path is taken from the caller's directory (we cd below).
if [[ "$python" == */* && "$python" != /* ]]; then
  python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
fi

mkdir -p "$1"
out_dir="$(cd "$1" && pwd)"

# grpc_tools ships google/protobuf/*.proto (timestamp, struct, ...) here.
wkt_include="$("$python" -c 'import importlib.resources as r; print(r.files("grpc_tools") / "_proto")')"

cd "$repo_root"

# Every .proto under proto/ (the import root), in a stable order.
mapfile -t protos < <(find proto -name '*.proto' -type f | LC_ALL=C sort)
if [[ ${#protos[@]} -eq 0 ]]; then
  echo "$0: no .proto files under $repo_root/proto" >&2
  exit 1
fi

rm -rf "$out_dir/jericommerce"

# Type stubs come from mypy-protobuf (installed beside grpcio-tools): typed
# enum values and typed stubs and servicers, which protoc's own --pyi_out
# does not give.
plugins="$(dirname "$python")"
"$python" -m grpc_tools.protoc \
  -I proto \
  -I "$wkt_include" \
  --plugin=protoc-gen-mypy="$plugins/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$plugins/protoc-gen-mypy_grpc" \
  --python_out="$out_dir" \
  --mypy_out=relax_strict_optional_primitives,quiet:"$out_dir" \
  --grpc_python_out="$out_dir" \
  --mypy_grpc_out=quiet:"$out_dir" \
  "${protos[@]}"

# Regular packages (not namespace packages), so type checkers and test
# collectors resolve `jericommerce.loyalty.v1` without special settings.
find "$out_dir/jericommerce" -type d -exec touch {}/__init__.py \;

echo "generated ${#protos[@]} proto files into $out_dir/jericommerce" >&2
