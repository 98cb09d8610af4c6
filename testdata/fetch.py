# Copyright 2026 the @x/port-reserve authors. MIT license.
# A test command for cli_test.ts: fetches http://127.0.0.1:$PORT/, prints
# "port N status S", and exits with the status given as its argument (0 by
# default), or 1 if the fetch failed.
import os
import sys
import urllib.request

port = os.environ["PORT"]
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        print(f"port {port} status {r.status}", flush=True)
except Exception as error:
    print(f"port {port} failed: {error}", flush=True)
    sys.exit(1)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
