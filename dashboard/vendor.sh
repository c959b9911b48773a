#!/usr/bin/env bash
# vendor.sh OUTDIR — puts Apache ECharts' dist/echarts.min.js (and its
# LICENSE) into OUTDIR for the live screen (web/web.c serves OUTDIR).
#
# The version and the npm registry's sha512 integrity are pinned here; the
# tarball comes from `npm pack` (the ordinary npm client) into a cache
# (~/.cache/funneld/npm, FD_CACHE overrides ~/.cache/funneld), is checked
# against the pinned sha512 before anything is extracted, and is never
# fetched at run time: funneld only serves the file in OUTDIR. Nothing
# minified is committed to the repository (decision: the pin is the
# reviewable artefact, the blob is rebuilt from it by CMake's `dashboard`
# target). To upgrade: change both lines below (`npm view echarts@VER
# dist.integrity` prints the second).
set -euo pipefail
ECHARTS_VERSION=5.6.0
ECHARTS_SHA512=oTbVTsXfKuEhxftHqL5xprgLoc0k7uScAwtryCgWF6hPYFLRwOUHiFmHGCBKP5NPFNkDVopOieyUqYGH8Fa3kA==

out=${1:?usage: vendor.sh OUTDIR}
cache=${FD_CACHE:-$HOME/.cache/funneld}/npm
tgz=$cache/echarts-$ECHARTS_VERSION.tgz
mkdir -p "$cache" "$out"
check() { [ "$(openssl dgst -sha512 -binary "$1" | base64 -w0)" = "$ECHARTS_SHA512" ]; }
if [ ! -f "$tgz" ] || ! check "$tgz"; then
  command -v npm >/dev/null || { echo "vendor.sh: npm not found (deploy/stack.sh deps installs it)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "echarts@$ECHARTS_VERSION" --silent >/dev/null)
  mv "$tmp/echarts-$ECHARTS_VERSION.tgz" "$tgz.part"
  if ! check "$tgz.part"; then
    rm -f "$tgz.part"
    echo "vendor.sh: echarts-$ECHARTS_VERSION.tgz does not match the pinned sha512; refusing it" >&2
    exit 1
  fi
  mv "$tgz.part" "$tgz"
fi
tar -xzf "$tgz" -O package/dist/echarts.min.js >"$out/echarts.min.js.part"
tar -xzf "$tgz" -O package/LICENSE >"$out/echarts.LICENSE.txt"
mv "$out/echarts.min.js.part" "$out/echarts.min.js"
