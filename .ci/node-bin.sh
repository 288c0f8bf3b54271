#!/usr/bin/env bash
# Usage: .ci/node-bin.sh MAJOR  -> prints the folder holding a `node` binary of that major version.
# The binary comes from the npm registry's `node` package, installed into .ci/node/MAJOR (ignored
# by git). npm skips that package's install script, but the binary it ships runs as it is.
set -euo pipefail
major="$1"
root="$(cd "$(dirname "$0")" && pwd)/node/$major"
bin="$root/node_modules/node/bin"
if [ ! -x "$bin/node" ]; then
  mkdir -p "$root"
  npm install --prefix "$root" --no-audit --no-fund --no-save --silent "node@$major" >&2
fi
if [ ! -x "$bin/node" ]; then
  echo "error: could not install node@$major from the npm registry into $root" >&2
  exit 1
fi
echo "$bin"
