#!/bin/sh
# Runs a command in a fresh network namespace (unshare -n, as root) with
# loopback up: its own port range and an empty TIME_WAIT table, so the host's
# sockets and other programs do not skew a measurement. Where that is not
# permitted, runs it on the host's network and says so on stderr.
# The pinned runtimes (npm install) come first on PATH: `deno`, `bun`.
# Usage: _tools/in_namespace.sh COMMAND [ARGS...]
PATH="$(cd "$(dirname "$0")/.." && pwd)/node_modules/.bin:$PATH"
export PATH
if unshare -n true 2>/dev/null; then
  exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
echo "in_namespace.sh: unshare -n is not permitted here (it needs root): running on the host's network" >&2
exec "$@"
