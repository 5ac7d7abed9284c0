#!/usr/bin/env python3
"""Small network probes the suite runs inside a namespace (`ip netns exec NS probe.py ...`).

  probe.py stun ADDR PORT    exit 0 when a STUN Binding over UDP is answered within 1 s
  probe.py bound ADDR PORT   exit 0 when something already holds UDP ADDR:PORT
  probe.py echo ADDR PORT    exit 0 when a datagram sent there comes back unchanged within 2 s
"""
import os
import socket
import struct
import sys

MAGIC = 0x2112A442


def stun(addr, port):
    tid = os.urandom(12)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    try:
        s.sendto(struct.pack("!HHI", 0x0001, 0, MAGIC) + tid, (addr, port))
        data, _ = s.recvfrom(2048)
    except OSError:
        return 1
    ok = len(data) >= 20 and struct.unpack("!HHI", data[:8])[0::2] == (0x0101, MAGIC) and data[8:20] == tid
    return 0 if ok else 1


def bound(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((addr, port))
    except OSError:
        return 0
    s.close()
    return 1


def echo(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    payload = os.urandom(16)
    try:
        s.sendto(payload, (addr, port))
        data, _ = s.recvfrom(2048)
    except OSError:
        return 1
    return 0 if data == payload else 1


def main(argv):
    if len(argv) != 4 or argv[1] not in ("stun", "bound", "echo"):
        sys.exit(__doc__)
    return {"stun": stun, "bound": bound, "echo": echo}[argv[1]](argv[2], int(argv[3]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
