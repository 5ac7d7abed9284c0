#!/usr/bin/env python3
"""A TURN client and a peer for the kernel fast path's lifecycle tests.

  fast_path_client.py sink ADDR PORT OUT_FILE SECONDS
      UDP peer: echoes every datagram and writes one arrival time (CLOCK_REALTIME) per line.
  fast_path_client.py client SERVER PORT SECRET PEER PEER_PORT SECONDS RATE ACTION [WHEN]
      Allocates (TURN REST credentials), binds channel 0x4000 to the peer, sends ChannelData
      at RATE per second for SECONDS, and prints JSON: when the binding was made, when ACTION
      happened, packets sent and echoes received. ACTION is `none` or `refresh0` (Refresh
      with lifetime 0 at WHEN seconds after the binding). With FP_PAYLOAD=N the payload is N
      bytes, and with FP_PAD=1 the frame is padded to a multiple of four with 0xAB bytes (RFC
      8656 allows padding over UDP; the relay must strip it and fix the checksum). The sink
      writes "arrival-time length" per datagram. Everything is bounded in time.
"""
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time
import zlib

MAGIC = 0x2112A442
ALLOCATE, REFRESH, CHANNEL_BIND = 0x003, 0x004, 0x009
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, REALM, NONCE = 0x0006, 0x0008, 0x0009, 0x0014, 0x0015
XOR_PEER_ADDRESS, CHANNEL_NUMBER, LIFETIME = 0x0012, 0x000C, 0x000D
REQUESTED_TRANSPORT, REQUESTED_FAMILY, FINGERPRINT = 0x0019, 0x0017, 0x8028
CHANNEL = 0x4000


def attr(kind, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def xor_address(host, port, tid):
    ip = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    xport = port ^ (MAGIC >> 16)
    key = struct.pack("!I", MAGIC) + tid
    xip = bytes(b ^ key[i] for i, b in enumerate(ip))
    family = 2 if len(ip) == 16 else 1
    return struct.pack("!BBH", 0, family, xport) + xip


def message(method, tid, attrs, key=None):
    body = b"".join(attrs)
    if key is not None:
        head = struct.pack("!HHI", method, len(body) + 24, MAGIC) + tid
        mac = hmac.new(key, head + body, hashlib.sha1).digest()
        body += attr(MESSAGE_INTEGRITY, mac)
    head = struct.pack("!HHI", method, len(body) + 8, MAGIC) + tid
    crc = (zlib.crc32(head + body) & 0xFFFFFFFF) ^ 0x5354554E
    body += attr(FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI", method, len(body), MAGIC) + tid + body


def parse(data):
    kind, length = struct.unpack("!HH", data[:4])
    attrs, pos = {}, 20
    while pos + 4 <= 20 + length:
        t, n = struct.unpack("!HH", data[pos:pos + 4])
        attrs.setdefault(t, data[pos + 4:pos + 4 + n])
        pos += 4 + ((n + 3) & ~3)
    return kind, data[8:20], attrs


def ask(sock, msg):
    tid = msg[8:20]
    for _ in range(5):
        sock.send(msg)
        deadline = time.time() + 1.0
        while time.time() < deadline:
            sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = sock.recv(4096)
            except socket.timeout:
                break
            if data[0] < 4 and data[8:20] == tid:
                return parse(data)
    raise SystemExit("no answer from the server")


class Turn:
    def __init__(self, server, port, secret):
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.connect((server, port))
        self.v6 = family == socket.AF_INET6
        self.username = f"{int(time.time()) + 3600}:fastpath"
        self.password = base64.b64encode(
            hmac.new(secret.encode(), self.username.encode(), hashlib.sha1).digest()).decode()
        self.key = self.realm = self.nonce = None

    def request(self, method, build):
        """Sends method with the attributes build(tid) returns (XOR addresses depend on the
        transaction id), answering the first challenge."""
        tid = os.urandom(12)
        if self.key is None:
            kind, _, a = ask(self.sock, message(method, tid, build(tid)))
            if kind & 0x0110 != 0x0110 or NONCE not in a:
                return kind, a
            self.realm, self.nonce = a[REALM], a[NONCE]
            self.key = hashlib.md5(
                self.username.encode() + b":" + self.realm + b":" + self.password.encode()).digest()
            tid = os.urandom(12)
        auth = [attr(USERNAME, self.username.encode()), attr(REALM, self.realm),
                attr(NONCE, self.nonce)]
        kind, _, a = ask(self.sock, message(method, tid, build(tid) + auth, self.key))
        return kind, a


def check(kind, attrs, what):
    if kind & 0x0110 != 0x0100:
        code = attrs.get(ERROR_CODE, b"\0\0\0\0")
        raise SystemExit(f"{what} failed: {code[2] * 100 + code[3]} {code[4:].decode(errors='replace')}")


def client(server, port, secret, peer, peer_port, seconds, rate, action, when):
    t = Turn(server, int(port), secret)
    alloc = [attr(REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))]
    if t.v6:
        alloc.append(attr(REQUESTED_FAMILY, bytes([2, 0, 0, 0])))
    check(*t.request(ALLOCATE, lambda _: alloc), "Allocate")

    def bind(tid):
        return [attr(CHANNEL_NUMBER, struct.pack("!HH", CHANNEL, 0)),
                attr(XOR_PEER_ADDRESS, xor_address(peer, int(peer_port), tid))]
    check(*t.request(CHANNEL_BIND, bind), "ChannelBind")
    bound = time.time()
    size = int(os.environ.get("FP_PAYLOAD", "96"))
    payload = (b"fast-path-probe!" * (size // 16 + 1))[:size]
    frame = struct.pack("!HH", CHANNEL, len(payload)) + payload
    if os.environ.get("FP_PAD") == "1":
        frame += b"\xab" * ((4 - len(frame) % 4) % 4)
    interval = 1.0 / float(rate)
    sent = received = 0
    acted = None
    start = time.time()
    next_send = start
    t.sock.setblocking(False)
    while time.time() - start < float(seconds):
        now = time.time()
        if action == "refresh0" and acted is None and now - bound >= float(when):
            t.sock.setblocking(True)
            check(*t.request(REFRESH, lambda _: [attr(LIFETIME, struct.pack("!I", 0))]),
                  "Refresh 0")
            acted = time.time()
            t.sock.setblocking(False)
        if now >= next_send:
            try:
                t.sock.send(frame)
                sent += 1
            except OSError:
                pass
            next_send += interval
        try:
            while True:
                data = t.sock.recv(4096)
                if data[:2] == struct.pack("!H", CHANNEL):
                    received += 1
        except (BlockingIOError, ConnectionRefusedError):
            pass
        time.sleep(max(0.0, min(interval, next_send - time.time())))
    print(json.dumps({"bound": bound, "acted": acted, "sent": sent, "received": received}))


def sink(addr, port, out, seconds):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    s.settimeout(0.2)
    end = time.time() + float(seconds)
    with open(out, "w") as f:
        while time.time() < end:
            try:
                data, src = s.recvfrom(4096)
            except socket.timeout:
                continue
            f.write(f"{time.time():.6f} {len(data)}\n")
            f.flush()
            s.sendto(data, src)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "sink":
        sink(*sys.argv[2:6])
    elif len(sys.argv) >= 2 and sys.argv[1] == "client":
        args = sys.argv[2:]
        client(*args[:8], args[8] if len(args) > 8 else "0")
    else:
        raise SystemExit(__doc__)
