#!/bin/sh
# Runs a test suite in fresh network and mount namespaces (unshare -n -m, as
# root): loopback up, its own port range and TIME_WAIT table, so suites side
# by side neither share nor swell one; and /etc/resolv.conf naming a resolver
# on 127.0.0.1 (testdata/nxdomain.py) that answers every lookup with NXDOMAIN,
# so that no lookup leaves the namespace. Where that is not permitted, runs
# the suite on the host's network and says so on stderr.
# The pinned runtimes (npm install) come first on PATH: `deno`, `bun`.
# Usage: _tools/suite_namespace.sh COMMAND [ARGS...]
root="$(cd "$(dirname "$0")/.." && pwd)"
PATH="$root/node_modules/.bin:$PATH"
export PATH
if ! unshare -n -m true 2>/dev/null; then
  echo "suite_namespace.sh: unshare -n -m is not permitted here (it needs root): running on the host's network" >&2
  exec "$@"
fi
exec unshare -n -m sh -c '
  set -e
  ip link set lo up
  conf="$(mktemp)"
  printf "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n" >"$conf"
  mount --bind "$conf" /etc/resolv.conf
  python3 "$0/testdata/nxdomain.py" >"$conf.ready" &
  dns=$!
  i=0
  until grep -q ready "$conf.ready" 2>/dev/null || [ $i -ge 500 ]; do
    sleep 0.01
    i=$((i + 1))
  done
  grep -q ready "$conf.ready" 2>/dev/null ||
    echo "suite_namespace.sh: the resolver on 127.0.0.1 did not start: lookups fail for now" >&2
  set +e
  "$@"
  status=$?
  kill "$dns"
  rm -f "$conf" "$conf.ready"
  exit $status
' "$root" "$@"
