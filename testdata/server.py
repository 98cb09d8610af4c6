# Copyright 2026 the @x/port-reserve authors. MIT license.
# Servers for cli_test.ts, on 127.0.0.1:$PORT:
#   server.py single          one thread, HTTP/1.1 (keep-alive): an idle
#                             connection left open blocks every other client
#   server.py graceful FILE   on SIGTERM, takes half a second to write FILE,
#                             then exits: a shutdown that needs its grace
import http.server
import os
import signal
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


mode = sys.argv[1]
if mode == "graceful":

    def stop(*_):
        time.sleep(0.5)
        with open(sys.argv[2], "w") as flag:
            flag.write("flushed")
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
Server = http.server.HTTPServer if mode == "single" else http.server.ThreadingHTTPServer
Server.allow_reuse_address = True
Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
