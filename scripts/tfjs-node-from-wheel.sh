#!/usr/bin/env bash
# tfjs-node-from-wheel.sh: install @tensorflow/tfjs-node into this project's
# node_modules and build its native addon against the libtensorflow that ships
# inside pip's tensorflow-cpu wheel.
#
# Why this exists: @tensorflow/tfjs-node's install script downloads libtensorflow
# (and a prebuilt addon) from storage.googleapis.com. On offline or firewalled
# machines that host cannot be reached, and some platforms have no prebuilt
# addon at all. pip's tensorflow-cpu wheel contains the same C API
# (libtensorflow_cc.so.2 + libtensorflow_framework.so.2 + headers), and a local
# package index or pip cache is often available where Google's bucket is not.
# So we take libtensorflow from the wheel and compile the package's own C++
# binding (binding/*.cc) with npm's bundled node-gyp.
#
# On a machine that can reach storage.googleapis.com, `npm i @tensorflow/tfjs-node`
# is all it takes; you do not need this script.
#
# tfjs-node is an optional peer dependency of this library, so it is installed
# with --no-save: package.json and package-lock.json stay unchanged (checked),
# and a later `npm ci` / `npm install` / `npm prune` removes it again; rerun
# this script then (the wheel stays cached, so the rerun is offline apart
# from npm).
#
# Usage: scripts/tfjs-node-from-wheel.sh [--node /path/to/node]
#   --node BIN         (or env NODE_BIN) node binary to build for and to check
#                      with (default: `node` on PATH). The addon is N-API v8,
#                      which is ABI-stable, so one build loads in every Node >= 12.
#   TF_WHEEL_VERSION   tensorflow-cpu wheel version (default 2.21.0)
#   NODEDIR            Node headers dir for node-gyp (default: the --node binary's
#                      prefix if it has include/node, else `npm config get nodedir`,
#                      else /usr)
#   XDG_CACHE_HOME     the wheel is kept in ${XDG_CACHE_HOME:-$HOME/.cache}/deepseek-moe-tfjs
#
# Idempotent: if require('@tensorflow/tfjs-node') already gives the 'tensorflow'
# backend it says so and exits 0; otherwise it only redoes the missing steps.

set -euo pipefail

TFJS_NODE_VERSION=4.22.0
TF_WHEEL_VERSION="${TF_WHEEL_VERSION:-2.21.0}"
NAPI_VERSION=8
NODE_BIN="${NODE_BIN:-}"

while [ $# -gt 0 ]; do
  case "$1" in
    --node) [ $# -ge 2 ] || { echo "error: --node needs a path" >&2; exit 2; }; NODE_BIN="$2"; shift 2 ;;
    --node=*) NODE_BIN="${1#--node=}"; shift ;;
    -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "error: $*" >&2; exit 1; }
step() { echo "==> $*"; }

NODE_BIN="${NODE_BIN:-$(command -v node || true)}"
[ -n "$NODE_BIN" ] || die "no node on PATH; pass --node BIN"
NODE_BIN="$(command -v "$NODE_BIN" || true)"
[ -n "$NODE_BIN" ] && [ -x "$NODE_BIN" ] || die "node binary not found or not executable"
NODE_BIN="$(cd "$(dirname "$NODE_BIN")" && pwd)/$(basename "$NODE_BIN")"

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG_DIR="$PROJECT_DIR/node_modules/@tensorflow/tfjs-node"
ADDON="$PKG_DIR/lib/napi-v$NAPI_VERSION/tfjs_binding.node"
STAMP="tensorflow-cpu==$TF_WHEEL_VERSION"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/deepseek-moe-tfjs"
cd "$PROJECT_DIR"

# Loads tfjs-node with $NODE_BIN from the project root; prints the backend and a matMul. Node 23 removed
# util.isNullOrUndefined, which tfjs-node 4.22 calls: supplied here as the library's initBackend does.
check_tfjs_node() {
  "$NODE_BIN" -e "
    const util = require('util');
    util.isNullOrUndefined ??= (v) => v === null || v === undefined;
    util.isArray ??= Array.isArray;
    const tf = require('@tensorflow/tfjs-node');
    if (tf.getBackend() !== 'tensorflow') { console.error('backend is ' + tf.getBackend()); process.exit(3); }
    console.log('node ' + process.version + ': backend ' + tf.getBackend() + ', tfjs-node ' + tf.version['tfjs-node'] + ', libtensorflow ' + tf.backend().binding.TF_Version);
    tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])).print();"
}
# Loads only the native addon (the N-API ABI question, independent of the JS side).
addon_loads() {
  [ -f "$ADDON" ] && "$NODE_BIN" -e "require(process.argv[1])" "$ADDON" >/dev/null 2>&1
}

step "node: $NODE_BIN ($("$NODE_BIN" -v)); project: $PROJECT_DIR"
# (an addon built here from another wheel version does not count; one installed
# by tfjs-node's own install script, without our stamp file, does)
if { [ ! -f "$ADDON.from-wheel" ] || [ "$(cat "$ADDON.from-wheel")" = "$STAMP" ]; } \
   && out="$(TF_CPP_MIN_LOG_LEVEL=2 check_tfjs_node 2>/dev/null)"; then
  echo "$out" | head -1
  echo "@tensorflow/tfjs-node already works with the tensorflow backend; nothing to do."
  exit 0
fi

# 1. the npm package, without touching package.json / package-lock.json
installed_version() { "$NODE_BIN" -p "require('$PKG_DIR/package.json').version" 2>/dev/null || true; }
if [ "$(installed_version)" = "$TFJS_NODE_VERSION" ]; then
  step "@tensorflow/tfjs-node@$TFJS_NODE_VERSION already in node_modules"
else
  step "npm install --no-save @tensorflow/tfjs-node@$TFJS_NODE_VERSION (scripts ignored)"
  sums_before="$(sha256sum package.json package-lock.json)"
  # --save-prod: tfjs-node is an optional peer dependency of this package and npm
  # prunes an optional peer from the ideal tree ("up to date", nothing added);
  # as a prod dependency in memory it is installed, and --no-save keeps it out of
  # package.json / package-lock.json.
  npm install --no-save --save-prod --ignore-scripts --no-audit --no-fund \
    "@tensorflow/tfjs-node@$TFJS_NODE_VERSION" || die "npm install @tensorflow/tfjs-node@$TFJS_NODE_VERSION failed"
  [ "$sums_before" = "$(sha256sum package.json package-lock.json)" ] \
    || die "npm changed package.json or package-lock.json; restore them with: git checkout package.json package-lock.json"
  [ "$(installed_version)" = "$TFJS_NODE_VERSION" ] \
    || die "npm did not install @tensorflow/tfjs-node@$TFJS_NODE_VERSION into $PKG_DIR"
fi
step "checking node_modules holds a single @tensorflow/tfjs-core"
cores="$(find node_modules -type d -path '*node_modules/@tensorflow/tfjs-core' -prune)"
[ "$cores" = "node_modules/@tensorflow/tfjs-core" ] \
  || die "expected exactly one @tensorflow/tfjs-core, found:"$'\n'"$cores"$'\n'"(two copies mean two registries of kernels/backends; align the tfjs versions)"

# 2. the tensorflow-cpu wheel, cached outside the repository
mkdir -p "$CACHE_DIR"
find_wheel() { ls "$CACHE_DIR"/tensorflow_cpu-"$TF_WHEEL_VERSION"-*.whl 2>/dev/null | head -1 || true; }
WHEEL="$(find_wheel)"
if [ -n "$WHEEL" ]; then
  step "wheel cached: $WHEEL"
else
  if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then PIP=(python3 -m pip)
  elif command -v pip3 >/dev/null; then PIP=(pip3)
  elif command -v pip >/dev/null; then PIP=(pip)
  else die "pip not found; install python3-pip, or put tensorflow_cpu-$TF_WHEEL_VERSION-*.whl into $CACHE_DIR"; fi
  step "pip download tensorflow-cpu==$TF_WHEEL_VERSION (~270 MB) into $CACHE_DIR"
  tmp_dl="$(mktemp -d "$CACHE_DIR/download.XXXXXX")"
  trap 'rm -rf "$tmp_dl"' EXIT
  "${PIP[@]}" download --no-deps --only-binary=:all: "tensorflow-cpu==$TF_WHEEL_VERSION" -d "$tmp_dl" \
    || die "pip download tensorflow-cpu==$TF_WHEEL_VERSION failed (no such version for this Python/platform, or no index reachable). You can also drop the wheel into $CACHE_DIR by hand."
  mv "$tmp_dl"/tensorflow_cpu-*.whl "$CACHE_DIR"/ || die "pip did not produce a tensorflow_cpu wheel"
  rm -rf "$tmp_dl"; trap - EXIT
  WHEEL="$(find_wheel)"
fi

# 3. libtensorflow + headers from the wheel into the package's deps/
DEPS="$PKG_DIR/deps"
if [ -f "$DEPS/.from-wheel" ] && [ "$(cat "$DEPS/.from-wheel")" = "$STAMP" ] \
   && [ -f "$DEPS/lib/libtensorflow_cc.so.2" ] && [ -f "$DEPS/include/tensorflow/c/c_api.h" ]; then
  step "deps/ already holds libtensorflow from $STAMP"
else
  step "extracting libtensorflow_cc.so.2, libtensorflow_framework.so.2 and headers (tensorflow/c, tensorflow/core, tsl, xla) from the wheel"
  rm -rf "$DEPS" "$PKG_DIR/deps.tmp"
  mkdir -p "$PKG_DIR/deps.tmp"
  members=(tensorflow/libtensorflow_cc.so.2 tensorflow/libtensorflow_framework.so.2
           'tensorflow/include/tensorflow/c/*' 'tensorflow/include/tensorflow/core/*'
           'tensorflow/include/tsl/*' 'tensorflow/include/xla/*')
  if command -v unzip >/dev/null; then
    unzip -q -o "$WHEEL" "${members[@]}" -d "$PKG_DIR/deps.tmp" || die "unzip of $WHEEL failed (corrupt download? delete it and rerun)"
  elif command -v python3 >/dev/null; then
    python3 - "$WHEEL" "$PKG_DIR/deps.tmp" "${members[@]}" <<'PY' || die "extracting from $WHEEL failed (corrupt download? delete it and rerun)"
import fnmatch, sys, zipfile
wheel, dest, pats = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if any(fnmatch.fnmatchcase(n, p) for p in pats)])
PY
  else
    die "neither unzip nor python3 found to read the wheel"
  fi
  t="$PKG_DIR/deps.tmp/tensorflow"
  [ -f "$t/libtensorflow_cc.so.2" ] && [ -f "$t/include/tensorflow/c/c_api.h" ] \
    || die "the wheel lacks libtensorflow_cc.so.2 or tensorflow/c/c_api.h; TF_WHEEL_VERSION=$TF_WHEEL_VERSION is not usable"
  mkdir -p "$t/lib"
  mv "$t"/libtensorflow_cc.so.2 "$t"/libtensorflow_framework.so.2 "$t/lib/"
  ln -s libtensorflow_cc.so.2 "$t/lib/libtensorflow.so"
  ln -s libtensorflow_framework.so.2 "$t/lib/libtensorflow_framework.so"
  echo "$STAMP" > "$t/.from-wheel"
  mv "$t" "$DEPS"
  rm -rf "$PKG_DIR/deps.tmp"
fi

# 4. the addon, built with npm's bundled node-gyp
if addon_loads && [ -f "$ADDON.from-wheel" ] && [ "$(cat "$ADDON.from-wheel")" = "$STAMP" ]; then
  step "addon already built against $STAMP and loads under $("$NODE_BIN" -v)"
else
  if [ -z "${NODEDIR:-}" ]; then
    node_prefix="$(cd "$(dirname "$NODE_BIN")/.." && pwd)"
    if [ -f "$node_prefix/include/node/common.gypi" ]; then NODEDIR="$node_prefix"
    else
      NODEDIR="$(npm config get nodedir 2>/dev/null || true)"
      case "$NODEDIR" in ''|undefined|null) NODEDIR=/usr ;; esac
    fi
  fi
  [ -f "$NODEDIR/include/node/node_api.h" ] \
    || die "no Node headers in $NODEDIR/include/node (set NODEDIR; on Debian: apt-get install libnode-dev)"
  npm_cli="$(readlink -f "$(command -v npm)")" || die "npm not found"
  NODE_GYP=""
  for c in "$(dirname "$npm_cli")/../node_modules/node-gyp/bin/node-gyp.js" \
           "$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" \
           "$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
    [ -f "$c" ] && { NODE_GYP="$(readlink -f "$c")"; break; }
  done
  [ -n "$NODE_GYP" ] || die "npm's bundled node-gyp not found"
  command -v make >/dev/null && command -v g++ >/dev/null || die "make and g++ are needed (apt-get install build-essential)"
  step "building tfjs_binding.node (N-API v$NAPI_VERSION) with $NODE_GYP, headers from $NODEDIR"
  (cd "$PKG_DIR" && "$NODE_BIN" "$NODE_GYP" rebuild --loglevel=warn --jobs=max --nodedir="$NODEDIR" \
     --module_name=tfjs_binding --module_path="lib/napi-v$NAPI_VERSION" --napi_build_version="$NAPI_VERSION") \
    || die "node-gyp build of the tfjs-node addon failed (see the compiler output above)"
  mkdir -p "$(dirname "$ADDON")"
  cp "$PKG_DIR/build/Release/tfjs_binding.node" "$ADDON"
  echo "$STAMP" > "$ADDON.from-wheel"
  addon_loads || die "built $ADDON but $NODE_BIN cannot load it: $("$NODE_BIN" -e "require(process.argv[1])" "$ADDON" 2>&1 | head -3)"
fi

# 5. the real check
step "checking require('@tensorflow/tfjs-node') under $("$NODE_BIN" -v)"
if ! check_tfjs_node; then
  if addon_loads; then
    die "the addon loads under $("$NODE_BIN" -v), but @tensorflow/tfjs-node@$TFJS_NODE_VERSION itself fails there (see above; e.g. it calls util APIs removed in newer Node)"
  fi
  die "@tensorflow/tfjs-node does not work (see above)"
fi
step "done: @tensorflow/tfjs-node@$TFJS_NODE_VERSION uses libtensorflow from $STAMP"
