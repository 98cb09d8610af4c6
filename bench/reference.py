# Copyright 2026 the @x/port-reserve authors. MIT license.
"""The Python reference for bench/per_call.sh: the reservation sequence of
Yelp's ephemeral-port-reserve, written here from its description (not its
code): bind 127.0.0.1:0 with SO_REUSEADDR, listen, connect, accept, close the
accepted side, then the client and the listener; nothing is read, so nothing
proves the accepted side's FIN arrived before the client closes.

    python3 bench/reference.py [BATCHES] [PER_BATCH]

Prints one JSON line as bench/per_call.ts does: the median over batches of
microseconds per reservation."""
import json
import socket
import statistics
import sys
import time


def reserve(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(1)
        address = listener.getsockname()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.connect(address)
            accepted, _ = listener.accept()
            accepted.close()
        return address[1]


def main():
    batches, per_batch = (int(arg) for arg in (sys.argv[1:] + ["10", "200"])[:2])
    for _ in range(50):  # warm up, as per_call.ts does
        reserve()
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(per_batch):
            reserve()
        samples.append((time.perf_counter() - start) * 1e6 / per_batch)
    print(json.dumps({
        "runtime": "python",
        "method": "reserve",
        "usPerPort": round(statistics.median(samples), 1),
        "min": round(min(samples), 1),
        "max": round(max(samples), 1),
        "ports": batches * per_batch + 50,
    }))


if __name__ == "__main__":
    main()
