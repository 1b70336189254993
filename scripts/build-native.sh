#!/usr/bin/env bash
# Builds Fleetboot's one native addon, native/fastudp.c (the TFTP service's
# UDP I/O, see the file's header), into build/native/fastudp.node with the C
# compiler and the headers of the Node that runs it. No node-gyp, no download.
# Without a compiler or headers it says so and exits 0: Fleetboot then uses
# node:dgram (slower per packet, same behaviour). Rebuilds only when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
src=native/fastudp.c
out=build/native/fastudp.node
node_bin=$(command -v node)
inc=""
for d in "$(dirname "$(dirname "$(readlink -f "$node_bin")")")/include/node" /usr/include/node /usr/local/include/node; do
  if [ -f "$d/node_api.h" ] && [ -f "$d/uv.h" ]; then inc=$d; break; fi
done
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1 || [ -z "$inc" ]; then
  echo "build-native: no C compiler ($cc) or Node headers (node_api.h, uv.h): TFTP uses node:dgram" >&2
  exit 0
fi
if [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$0" ] && [ "$out" -nt "$node_bin" ]; then exit 0; fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"$cc" -std=c11 -O2 -fPIC -shared -Wall -Wextra -Werror -fvisibility=hidden \
  -I"$inc" -DNAPI_VERSION=8 -o "$tmp" "$src"
mv -f "$tmp" "$out"
