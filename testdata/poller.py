# Copyright 2026 the @x/port-reserve authors. MIT license.
# A "wait until the server is up" poller for mod_test.ts, in a process of its
# own: 8 threads connect to 127.0.0.1:PORT every millisecond for SECONDS, then
# it prints how many connections were accepted; SIGTERM ends it sooner, as the
# test it serves does once it is done. With `reset`, each connection ends with
# a reset (SO_LINGER 0), which fails an accept still to come, and the next
# follows at once. With --ready=FILE, it creates FILE as it starts polling.
#   python3 poller.py PORT SECONDS [reset] [--ready=FILE]
import signal
import socket
import struct
import sys
import threading
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
reset = "reset" in sys.argv[3:]
ready = [arg[len("--ready="):] for arg in sys.argv[3:] if arg.startswith("--ready=")]
stop = time.time() + seconds
accepted = []
stopped = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopped.set())


def poll():
    while time.time() < stop and not stopped.is_set():
        s = socket.socket()
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            s.connect(("127.0.0.1", port))
            accepted.append(1)
        except OSError:
            pass
        s.close()
        if not reset:
            time.sleep(0.001)


threads = [threading.Thread(target=poll) for _ in range(8)]
for path in ready:
    open(path, "w").close()
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(accepted))
