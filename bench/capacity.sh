#!/usr/bin/env bash
# The capacity curve: microseconds per reservation against the number of
# outstanding reservations, 0 to 20,000, for the C floor, Deno and Bun, each in
# a fresh network namespace (default port range, empty TIME_WAIT table); then
# exhaustion in a namespace with a 1,000-port range: what the last call says
# and how long it takes. Writes bench/data/capacity.json and
# bench/data/capacity.svg (the README shows the chart).
# Takes about four minutes (the kernel is slow near the cliff).
# Usage: bench/capacity.sh [TOTAL] [BUCKET]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-20000}
bucket=${2:-500}
bin=node_modules/.bin
ns=_tools/in_namespace.sh
narrow='echo "40000 40999" > /proc/sys/net/ipv4/ip_local_port_range && exec "$@"'
mkdir -p .build
command -v cc >/dev/null && cc -O2 -o .build/floor bench/floor.c
{
  echo '{"curves":['
  if [ -x .build/floor ]; then
    $ns .build/floor capacity "$total" "$bucket"
    echo ,
  fi
  $ns "$bin/deno" run -A bench/capacity.ts "$total" "$bucket"
  echo ,
  $ns "$bin/bun" bench/capacity.ts "$total" "$bucket"
  echo '],"exhaustion":['
  if [ -x .build/floor ]; then
    $ns sh -c "$narrow" sh .build/floor capacity 100000 100
    echo ,
  fi
  $ns sh -c "$narrow" sh "$bin/deno" run -A bench/capacity.ts 100000 100
  echo ,
  $ns sh -c "$narrow" sh "$bin/bun" bench/capacity.ts 100000 100
  echo ']}'
} >.build/capacity.json
node -e 'JSON.parse(require("fs").readFileSync(".build/capacity.json", "utf8"))'
mkdir -p bench/data
cp .build/capacity.json bench/data/capacity.json
"$bin/deno" run -R=bench/data -W=bench/data bench/chart.ts \
  bench/data/capacity.json bench/data/capacity.svg
"$bin/deno" fmt -q bench/data/capacity.json
echo "wrote bench/data/capacity.json and bench/data/capacity.svg"
