#!/usr/bin/env python3
"""One TURN Allocate over UDP with long-term credentials (RFC 8656), standard library only.

Prints `success` or `error CODE REASON` for the authenticated attempt, so a test can tell a
401 (wrong credentials) from any other refusal. Exits 1 when no answer comes within 2 s.

usage: turn_allocate.py HOST PORT USERNAME PASSWORD
"""
import hashlib
import hmac
import os
import socket
import struct
import sys

COOKIE = 0x2112A442


def attr(kind, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def message(kind, tid, attrs, key=None):
    body = b"".join(attrs)
    if key is None:
        return struct.pack("!HHI", kind, len(body), COOKIE) + tid + body
    # MESSAGE-INTEGRITY covers the header with the length already counting itself.
    head = struct.pack("!HHI", kind, len(body) + 24, COOKIE) + tid
    mac = hmac.new(key, head + body, hashlib.sha1).digest()
    return head + body + attr(0x0008, mac)


def parse(data):
    kind, length, _ = struct.unpack("!HHI", data[:8])
    attrs, pos = {}, 20
    while pos + 4 <= 20 + length and pos + 4 <= len(data):
        t, n = struct.unpack("!HH", data[pos:pos + 4])
        attrs.setdefault(t, data[pos + 4:pos + 4 + n])
        pos += 4 + ((n + 3) & ~3)
    return kind, attrs


def ask(sock, addr, msg):
    sock.sendto(msg, addr)
    data, _ = sock.recvfrom(4096)
    return parse(data)


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    addr = (host, port)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    transport = attr(0x0019, bytes([17, 0, 0, 0]))
    kind, attrs = ask(sock, addr, message(0x0003, os.urandom(12), [transport]))
    if kind == 0x0103:
        print("success (no authentication asked)")
        return
    realm, nonce = attrs.get(0x0014), attrs.get(0x0015)
    if realm is None or nonce is None:
        print("error: first answer carries no REALM/NONCE")
        return
    key = hashlib.md5(user.encode() + b":" + realm + b":" + password.encode()).digest()
    signed = [transport, attr(0x0006, user.encode()), attr(0x0014, realm), attr(0x0015, nonce)]
    kind, attrs = ask(sock, addr, message(0x0003, os.urandom(12), signed, key))
    if kind == 0x0103:
        print("success")
        # Free the allocation again (Refresh with LIFETIME 0) so the relay port is released.
        refresh = [attr(0x000D, struct.pack("!I", 0))] + signed[1:]
        try:
            ask(sock, addr, message(0x0004, os.urandom(12), refresh, key))
        except OSError:
            pass
        return
    err = attrs.get(0x0009, b"\0\0\0\0")
    code = (err[2] & 0x7) * 100 + err[3]
    print("error %d %s" % (code, err[4:].decode("utf-8", "replace")))


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        print("no answer: %s" % e, file=sys.stderr)
        sys.exit(1)
