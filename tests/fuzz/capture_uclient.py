#!/usr/bin/env python3
"""Captures real turnutils_uclient traffic against the release binary into the fuzz corpus.

    python3 tests/fuzz/capture_uclient.py target/release/ferroturn

Everything runs on 127.0.0.1: ferroturn, turnutils_peer, and a recording UDP+TCP proxy between
uclient and the relay. Short uclient runs (channels, Send indications, over UDP and TCP) pass
through the proxy; what each side sent is written to
- corpus/stun_codec/uclient-*: distinct datagrams of each kind (request, response, indication,
  ChannelData), both directions;
- corpus/server/uclient-*: the client's datagrams in order as a core script (raw UDP/TCP steps);
- corpus/stream_framing/uclient-*: the first bytes of each TCP direction, cut into reads.
"""
import hashlib
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
LO = "127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        u.bind((LO, 0))
        port = u.getsockname()[1]
        try:
            t.bind((LO, port))
        except OSError:
            return free_port()
        return port


class Proxy:
    """Forwards UDP and TCP from `listen` to `upstream`, recording every datagram and stream."""

    def __init__(self, listen, upstream):
        self.upstream = (LO, upstream)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((LO, listen))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((LO, listen))
        self.tcp.listen(16)
        self.lock = threading.Lock()
        self.datagrams = []  # (direction, transport, bytes)
        self.streams = []  # [client_to_server bytearray, server_to_client bytearray]
        self.stop = False
        self.threads = [threading.Thread(target=self.run_udp, daemon=True),
                        threading.Thread(target=self.run_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def record(self, direction, transport, data):
        with self.lock:
            self.datagrams.append((direction, transport, bytes(data)))

    def run_udp(self):
        ups = {}  # client address -> upstream socket
        back = {}
        while not self.stop:
            socks = [self.udp] + list(ups.values())
            ready, _, _ = select.select(socks, [], [], 0.2)
            for s in ready:
                data, addr = s.recvfrom(65535)
                if s is self.udp:
                    up = ups.get(addr)
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.connect(self.upstream)
                        ups[addr] = up
                        back[up] = addr
                    self.record("c2s", "udp", data)
                    up.send(data)
                else:
                    self.record("s2c", "udp", data)
                    self.udp.sendto(data, back[s])

    def run_tcp(self):
        self.tcp.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            up = socket.create_connection(self.upstream)
            pair = [bytearray(), bytearray()]
            with self.lock:
                self.streams.append(pair)
            for src, dst, buf in ((conn, up, pair[0]), (up, conn, pair[1])):
                threading.Thread(target=self.pump, args=(src, dst, buf), daemon=True).start()

    def pump(self, src, dst, buf):
        try:
            while True:
                data = src.recv(65535)
                if not data:
                    break
                with self.lock:
                    buf.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def take(self):
        with self.lock:
            d, s = self.datagrams, self.streams
            self.datagrams, self.streams = [], []
        return d, s


def kind_of(data):
    if not data:
        return "empty"
    if data[0] & 0xC0 == 0x40:
        return "channeldata"
    if len(data) >= 2:
        return "stun-%04x" % int.from_bytes(data[:2], "big")
    return "short"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def script(datagrams):
    """A core script (tests/fuzz/src/lib.rs) of raw client steps: op 0 UDP, op 1 TCP."""
    out = bytearray([0])
    for transport, data in datagrams:
        if len(data) > 255 or len(out) > 3500:
            continue
        out += bytes([0 if transport == "udp" else 1, len(data)]) + data
    return bytes(out)


def chunked(stream, limit=2000):
    out = bytearray()
    data = stream[:limit]
    sizes = [3, 1, 8, 32, 2]
    i = 0
    n = 0
    while i < len(data):
        k = sizes[n % len(sizes)]
        out += bytes([k]) + data[i:i + k * 8]
        i += k * 8
        n += 1
    return bytes(out)


def main():
    binary = os.path.abspath(sys.argv[1])
    for tool in ("turnutils_uclient", "turnutils_peer"):
        if shutil.which(tool) is None:
            sys.exit(f"capture: {tool} is missing (Debian package coturn)")
    work = tempfile.mkdtemp(prefix="ferroturn-capture.")
    turn_port, proxy_port, peer_port = free_port(), free_port(), free_port()
    relay = free_port()
    conf = os.path.join(work, "turnserver.conf")
    secret = "capture-secret"
    with open(conf, "w") as f:
        f.write(f"listening-ip={LO}\nrelay-ip={LO}\nlistening-port={turn_port}\n"
                f"min-port={relay}\nmax-port={relay + 50}\nrealm=capture.test\n"
                f"use-auth-secret\nstatic-auth-secret={secret}\nallow-loopback-peers\n"
                "fingerprint\nno-tls\nno-dtls\n")
    procs = []
    try:
        log = open(os.path.join(work, "log"), "w")
        procs.append(subprocess.Popen([binary, "-c", conf], stdout=log, stderr=log))
        procs.append(subprocess.Popen(["turnutils_peer", "-L", LO, "-p", str(peer_port)],
                                      stdout=log, stderr=log))
        time.sleep(1.0)
        proxy = Proxy(proxy_port, turn_port)
        base = ["turnutils_uclient", "-p", str(proxy_port), "-n", "6", "-m", "1", "-l", "120",
                "-W", secret, "-u", "alice", "-e", LO, "-r", str(peer_port)]
        scenarios = {"udp-channels": [], "udp-send": ["-s"], "tcp-channels": ["-t"],
                     "tcp-send": ["-t", "-s"]}
        for name, extra in scenarios.items():
            r = subprocess.run(base + extra + [LO], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            time.sleep(0.3)
            datagrams, streams = proxy.take()
            print(f"capture: {name}: uclient exit {r.returncode}, {len(datagrams)} datagrams, "
                  f"{sum(len(a) + len(b) for a, b in streams)} stream bytes")
            seen = {}
            for direction, _, data in datagrams:
                k = (direction, kind_of(data))
                if seen.get(k, 0) < 2:
                    seen[k] = seen.get(k, 0) + 1
                    h = hashlib.sha1(data).hexdigest()[:10]
                    write("stun_codec", f"uclient-{name}-{direction}-{k[1]}-{h}", data)
            client = [(t, d) for direction, t, d in datagrams if direction == "c2s"]
            if client:
                write("server", f"uclient-{name}", script(client))
            for i, (c2s, s2c) in enumerate(streams[:2]):
                write("stream_framing", f"uclient-{name}-{i}-c2s", chunked(bytes(c2s)))
                write("stream_framing", f"uclient-{name}-{i}-s2c", chunked(bytes(s2c)))
                frames = split_frames(bytes(c2s))
                if frames:
                    write("server", f"uclient-{name}-{i}-tcp",
                          script([("tcp", f) for f in frames[:40]]))
        proxy.stop = True
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                # SIGTERM starts a drain that waits for the allocations to go.
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def split_frames(stream):
    """Cuts a client's TCP stream into STUN and ChannelData frames (RFC 8656 §12.5)."""
    frames = []
    i = 0
    while i + 4 <= len(stream):
        body = int.from_bytes(stream[i + 2:i + 4], "big")
        total = 20 + body if stream[i] & 0xC0 == 0 else 4 + ((body + 3) & ~3)
        if i + total > len(stream):
            break
        frames.append(stream[i:i + total])
        i += total
    return frames


if __name__ == "__main__":
    main()
