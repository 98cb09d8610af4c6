# Copyright 2026 the @x/port-reserve authors. MIT license.
# A DNS resolver for a test suite's private network namespace
# (_tools/suite_namespace.sh): on 127.0.0.1:53 (UDP), it answers every query
# with NXDOMAIN, the answer any real resolver gives for nope.invalid, so that
# no lookup leaves the namespace. Prints "ready" once it listens.
#   python3 nxdomain.py
import socket
import struct
import sys

server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    query, client = server.recvfrom(4096)
    if len(query) < 12:
        continue
    (ident, flags) = struct.unpack("!HH", query[:4])
    # The question, as asked: its name ends with a zero byte, then type and
    # class. A datagram that is no question gets no answer.
    end = query.find(b"\0", 12) + 5
    if end < 17 or end > len(query):
        continue
    # QR, the query's opcode and RD, RA, RCODE 3 (NXDOMAIN); one question.
    answer_flags = 0x8000 | (flags & 0x7900) | 0x0080 | 3
    header = struct.pack("!HHHHHH", ident, answer_flags, 1, 0, 0, 0)
    server.sendto(header + query[12:end], client)
