#!/usr/bin/env bash
# Generate the typed gRPC clients from proto/ (buf.gen.yaml) and build the
# example program of each language under clients/:
#
#   clients/ts/build/js/example.js     TypeScript (protoc-gen-es + Connect), tsc strict
#   clients/go/build/loyalty-example   Go (protoc-gen-go + protoc-gen-go-grpc), GOPATH mode
#   clients/cpp/build/loyalty-example  C++ (protoc + grpc_cpp_plugin), CMake
#   clients/java/build/loyalty-example Java (protoc + grpc_java_plugin), javac
#
#   scripts/build_clients.sh            (what `make clients` runs)
#
# Installs what is missing: Debian packages with apt-get when run as root,
# the TypeScript tool chain with `npm ci` from clients/ts/package-lock.json.
# A language is rebuilt only when its inputs changed (the protos, the
# templates, its sources, the tool versions, this script); everything built
# stays under clients/*/build (never committed).
#
# Exit status: 0 built (or up to date); 3 a tool chain is missing and cannot
# be installed here (the message says what to install); 1 anything else.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
buf="$repo_root/.venv/bin/buf"
python="$repo_root/.venv/bin/python"

say() { echo "clients: $*" >&2; }
missing_toolchain() {
  say "$*"
  exit 3
}

# --- tool chains -------------------------------------------------------------

[[ -x "$buf" && -x "$python" ]] || missing_toolchain "no .venv with buf: run \`make venv\` first"

tcnative="/usr/lib/$(uname -m)-linux-gnu/jni/libnetty-tcnative.so"

# One line a need: what to probe, and the Debian package that provides it.
# `cmd:` a command on PATH, `path:` a file or directory, `pc:` a pkg-config
# module. grpc-go accepts golang/protobuf 1.3 or 1.5, but only 1.5 (its
# registry.go) decodes messages made by today's protoc-gen-go.
NEEDS=(
  "cmd:node nodejs"
  "cmd:npm npm"
  "cmd:go golang-go"
  "cmd:protoc-gen-go protoc-gen-go"
  "cmd:protoc-gen-go-grpc protoc-gen-go-grpc"
  "path:/usr/share/gocode/src/google.golang.org/grpc golang-google-grpc-dev"
  "path:/usr/share/gocode/src/github.com/golang/protobuf/proto/registry.go golang-github-golang-protobuf-1-5-dev"
  "path:/usr/share/gocode/src/google.golang.org/protobuf golang-google-protobuf-dev"
  "path:/usr/share/gocode/src/google.golang.org/genproto/googleapis/rpc/errdetails golang-google-genproto-dev"
  "cmd:protoc protobuf-compiler"
  "cmd:grpc_cpp_plugin protobuf-compiler-grpc"
  "cmd:pkg-config pkg-config"
  "pc:grpc++ libgrpc++-dev"
  "cmd:cmake cmake"
  "cmd:g++ g++"
  "path:/usr/include/nlohmann/json.hpp nlohmann-json3-dev"
  "cmd:javac default-jdk-headless"
  "cmd:grpc_java_plugin protobuf-compiler-grpc-java-plugin"
  "path:$tcnative libnetty-tcnative-jni"
)
# The Java example's class path: Debian's jars, and the package of each.
JAVA_JARS=(
  "grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub:libgrpc-java"
  "protobuf:libprotobuf-java"
  "proto-google-common-protos:libgoogle-common-protos-java"
  "guava:libguava-java"
  "gson:libgoogle-gson-java"
  "perfmark-api:libperfmark-java"
  "error_prone_annotations:liberror-prone-java"
  "jsr305:libjsr305-java"
  "animal-sniffer-annotations:libanimal-sniffer-java"
  "geronimo-annotation-1.3-spec:libgeronimo-annotation-1.3-spec-java"
  "netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-codec-socks netty-common netty-handler netty-handler-proxy netty-resolver netty-transport:libnetty-java"
  # TLS: Debian's netty has no ALPN with the JDK's own TLS; grpc-netty
  # then uses OpenSSL through netty-tcnative (and its JNI library).
  "netty-tcnative:libnetty-tcnative-java"
)
java_classpath=""
for entry in "${JAVA_JARS[@]}"; do
  for jar in ${entry%%:*}; do
    NEEDS+=("path:/usr/share/java/$jar.jar ${entry#*:}")
    java_classpath+="${java_classpath:+:}/usr/share/java/$jar.jar"
  done
done

present() {
  local kind="${1%%:*}" what="${1#*:}"
  case "$kind" in
    cmd) command -v "$what" >/dev/null 2>&1 ;;
    path) [[ -e "$what" ]] ;;
    pc) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$what" ;;
  esac
}

missing_packages() {
  local need
  for need in "${NEEDS[@]}"; do
    present "${need% *}" || echo "${need#* }"
  done | sort -u
}

mapfile -t missing < <(missing_packages)
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
      missing_toolchain "apt-get install ${missing[*]} failed"
    mapfile -t missing < <(missing_packages)
  fi
  [[ ${#missing[@]} -eq 0 ]] ||
    missing_toolchain "missing tool chains: run \`sudo apt-get install -y ${missing[*]}\` (Debian 12), then \`make clients\`"
fi

ts_dir=clients/ts
lock_sum="$(sha256sum "$ts_dir/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$ts_dir/node_modules/.lock-sha256" 2>/dev/null)" != "$lock_sum" ]]; then
  say "npm ci in $ts_dir"
  (cd "$ts_dir" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
    missing_toolchain "npm ci in $ts_dir failed (is the npm registry reachable?)"
  echo "$lock_sum" >"$ts_dir/node_modules/.lock-sha256"
fi

# google.rpc.Status and ErrorInfo (googleapis), from the venv's
# googleapis-common-protos: the .proto files ship beside its modules.
googleapis_rpc="$("$python" -c 'import os, google.rpc.status_pb2 as m; print(os.path.dirname(m.__file__))')"
googleapis_protos=("$googleapis_rpc/status.proto" "$googleapis_rpc/error_details.proto")

# --- what changed ------------------------------------------------------------

# One version for every package made here: the project's own.
version="$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"

mapfile -t protos < <(find proto -name '*.proto' -type f | LC_ALL=C sort)
[[ ${#protos[@]} -gt 0 ]] || { say "no .proto files under proto/"; exit 1; }

common_sum="$(
  {
    sha256sum "${protos[@]}" buf.gen.yaml clients/buf.gen.googleapis.yaml \
      scripts/build_clients.sh "${googleapis_protos[@]}" | cut -d' ' -f1
    echo "$version"
    "$buf" --version
    protoc --version
    go version
    node --version
    pkg-config --modversion grpc++ protobuf
    dpkg-query -W -f '${Version}\n' protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev \
      golang-google-protobuf-dev golang-google-genproto-dev golang-github-golang-protobuf-1-5-dev \
      libgrpc-java libprotobuf-java protobuf-compiler-grpc-java-plugin 2>/dev/null || true
    javac -version 2>&1
  } | sha256sum | cut -d' ' -f1
)"

inputs_sum() { # LANG FILE...: the hash of everything that language's build reads
  local lang="$1"
  shift
  { echo "$common_sum"; sha256sum "$@"; } | sha256sum | cut -d' ' -f1
}

declare -A want
want[ts]="$(inputs_sum ts "$ts_dir/example.ts" "$ts_dir/consumer.ts" "$ts_dir/decimal.ts" "$ts_dir/broken.ts" "$ts_dir/tsconfig.json" "$ts_dir/package-lock.json" "$ts_dir/lib/package.json" "$ts_dir/lib/tsconfig.json")"
mapfile -t go_sources < <(find clients/go -path clients/go/build -prune -o -type f -name '*.go' -print | LC_ALL=C sort)
want[go]="$(inputs_sum go "${go_sources[@]}")"
mapfile -t cpp_sources < <(find clients/cpp -path clients/cpp/build -prune -o -type f -print | LC_ALL=C sort)
want[cpp]="$(inputs_sum cpp "${cpp_sources[@]}")"
want[java]="$(inputs_sum java clients/java/Example.java clients/java/Consumer.java clients/java/PointsState.java clients/java/loyalty-client.pom.in)"

stale=()
for lang in ts go cpp java; do
  [[ "$(cat "clients/$lang/build/.inputs-sha256" 2>/dev/null)" == "${want[$lang]}" ]] || stale+=("$lang")
done
if [[ ${#stale[@]} -eq 0 ]]; then
  say "up to date (ts, go, cpp, java)"
  exit 0
fi

# --- generate ----------------------------------------------------------------

# Generated into a scratch tree first, then copied over only where a file's
# content changed, so the C++ and Go builds recompile only what changed.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/googleapis/google/rpc"
cp "${googleapis_protos[@]}" "$scratch/googleapis/google/rpc/"
"$buf" generate --template buf.gen.yaml -o "$scratch/out"
"$buf" generate "$scratch/googleapis" --template clients/buf.gen.googleapis.yaml -o "$scratch/out"

sync_tree() { # SRC DST: make DST's regular files equal to SRC's
  local src="$1" dst="$2" rel
  mkdir -p "$dst"
  while IFS= read -r -d '' rel; do
    if ! cmp -s "$src/$rel" "$dst/$rel"; then
      mkdir -p "$(dirname "$dst/$rel")"
      cp "$src/$rel" "$dst/$rel"
    fi
  done < <(cd "$src" && find . -type f -print0)
  while IFS= read -r -d '' rel; do
    [[ -e "$src/$rel" ]] || rm -f "$dst/$rel"
  done < <(cd "$dst" && find . -type f -print0)
}
sync_tree "$scratch/out/clients/ts/build/gen" clients/ts/build/gen
sync_tree "$scratch/out/clients/go/build/gopath/src" clients/go/build/gopath/src
sync_tree "$scratch/out/clients/cpp/build/gen" clients/cpp/build/gen
sync_tree "$scratch/out/clients/java/build/gen" clients/java/build/gen

# --- build -------------------------------------------------------------------

build_ts() {
  rm -rf "$ts_dir/build/js" "$ts_dir/build/pkg" "$ts_dir"/build/*.tgz
  "$ts_dir/node_modules/.bin/tsc" -p "$ts_dir"
  # The npm package: every generated module compiled with its declarations,
  # one index re-exporting them all, and the version of this project.
  (cd "$ts_dir/build/gen" && find . -name '*_pb.ts' | LC_ALL=C sort |
    sed -e 's|^\./\(.*\)\.ts$|export * from "./\1.js";|') >"$ts_dir/build/gen/index.ts"
  "$ts_dir/node_modules/.bin/tsc" -p "$ts_dir/lib"
  "$python" - "$ts_dir/lib/package.json" "$ts_dir/build/pkg/package.json" "$version" <<'PY'
import json, sys
manifest = json.load(open(sys.argv[1]))
manifest["version"] = sys.argv[3]
json.dump(manifest, open(sys.argv[2], "w"), indent=2)
PY
  (cd "$ts_dir/build" && npm pack ./pkg --pack-destination . --loglevel=error >/dev/null)
}

build_go() {
  # GOPATH mode against Debian's Go libraries; the example joins the GOPATH
  # through a symbolic link, beside the generated package.
  local example_path="$repo_root/clients/go/build/examplepath" program
  mkdir -p "$example_path/src"
  for program in example consumer; do
    ln -sfn "../../../$program" "$example_path/src/loyalty$program"
    GO111MODULE=off GOFLAGS= \
      GOPATH="$repo_root/clients/go/build/gopath:$example_path:/usr/share/gocode" \
      GOCACHE="$repo_root/clients/go/build/gocache" \
      go build -o "clients/go/build/loyalty-$program" "loyalty$program"
  done
}

build_cpp() {
  # The client library as a CMake package (installed, then packed), and the
  # example built against the installed package, as another team would.
  local out="$repo_root/clients/cpp/build"
  rm -rf "$out/package"
  cmake -S clients/cpp -B "$out/cmake" -DLOYALTY_CLIENT_VERSION="$version" \
    -DCMAKE_INSTALL_PREFIX="$out/package" >/dev/null
  cmake --build "$out/cmake" -j "$(nproc)"
  cmake --install "$out/cmake" >/dev/null
  (cd "$out/cmake" && cpack -B "$out" >/dev/null)
  rm -rf "$out/_CPack_Packages"
  cmake -S clients/cpp/example -B "$out/example" -DCMAKE_PREFIX_PATH="$out/package" >/dev/null
  cmake --build "$out/example" -j "$(nproc)"
  cp "$out/example/loyalty-example" "$out/example/loyalty-consumer" "$out/"
}

build_java() {
  # The client as a Maven artifact (jar + pom) in a local repository under
  # build/maven, and the example compiled and run against that jar. The
  # generated google.rpc classes (Debian's common-protos predates ErrorInfo)
  # stay out of the jar, in build/rpc-classes, before Debian's older copies:
  # a Maven build gets them from the pom's proto-google-common-protos.
  local out=clients/java/build
  local artifact="$out/maven/com/jericommerce/loyalty-client/$version"
  local jar="$artifact/loyalty-client-$version.jar"
  rm -rf "$out/classes" "$out/rpc-classes" "$out/maven"
  mkdir -p "$out/classes" "$out/rpc-classes" "$artifact"
  find "$out/gen" -name '*.java' >"$out/sources.txt"
  javac -nowarn -encoding UTF-8 -d "$out/rpc-classes" -cp "$java_classpath" @"$out/sources.txt"
  jar --create --file "$jar" -C "$out/rpc-classes" com/jericommerce
  rm -rf "$out/rpc-classes/com/jericommerce"
  sed "s/@VERSION@/$version/" clients/java/loyalty-client.pom.in >"$artifact/loyalty-client-$version.pom"
  javac -nowarn -encoding UTF-8 -d "$out/classes" \
    -cp "$jar:$out/rpc-classes:$java_classpath" clients/java/Example.java clients/java/Consumer.java \
    clients/java/PointsState.java
  # netty loads tcnative as libnetty_tcnative.so, Debian names it
  # libnetty-tcnative.so, and the library checks its own file name on load:
  # a copy under the expected name, not a link.
  mkdir -p "$out/native"
  cp "$tcnative" "$out/native/libnetty_tcnative.so"
  local program
  for program in Example Consumer; do
    cat >"$out/loyalty-${program,,}" <<LAUNCHER
#!/bin/sh
# Runs the Java $program (written by scripts/build_clients.sh).
here="\$(cd "\$(dirname "\$0")" && pwd)"
exec java -Djava.library.path="\$here/native" -cp "\$here/classes:\$here/${jar#"$out/"}:\$here/rpc-classes:$java_classpath" $program "\$@"
LAUNCHER
    chmod +x "$out/loyalty-${program,,}"
  done
}

for lang in "${stale[@]}"; do
  say "building $lang"
  rm -f "clients/$lang/build/.inputs-sha256"
  "build_$lang"
  echo "${want[$lang]}" >"clients/$lang/build/.inputs-sha256"
done
say "built ${stale[*]}: clients/ts/build/js/example.js and clients/{go,cpp,java}/build/loyalty-example"
