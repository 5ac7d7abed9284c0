#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpus (tests/fuzz/corpus/TARGET/).

    python3 tests/fuzz/seeds.py [FERROTURN_BIN]

- stun_codec, stream_framing, server: the RFC 5769 test vectors, read out of
  src/proto/stun/rfc5769_tests.rs so there is one copy of them.
- server: scripts in the step language of tests/fuzz/src/lib.rs (Allocate, permission,
  channel, relay both ways, Refresh, expiry, closed flows, the second configuration).
- conf_file: the configuration files the repository ships (conf/*.conf).
- jitsi_lua, jitsi_env: the Prosody, docker and Kubernetes files `ferroturn jitsi init`
  writes (when FERROTURN_BIN is given), and a few hand-written variants.

Captured turnutils_uclient traffic comes from capture_uclient.py next to this file.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rfc5769_vectors():
    text = open(os.path.join(ROOT, "src/proto/stun/rfc5769_tests.rs")).read()
    out = {}
    for name, body in re.findall(r'const (SAMPLE_\w+): &str = "([0-9a-f\s]+)";', text):
        out[name.lower()] = bytes.fromhex("".join(body.split()))
    assert len(out) == 4, out.keys()
    return out


def step(op, payload=b""):
    assert len(payload) < 256
    return bytes([op, len(payload)]) + payload


# Step kinds (op % 8) and the signed-request argument layout, as in src/lib.rs.
RAW_UDP, RAW_TCP, SIGNED, SIGNED_HI, PEER, CLOCK, CHANNEL_DATA, CLOSE = range(8)
METHODS = ["allocate", "refresh", "permission", "channel", "binding", "send", "data", "bogus"]


def signed(flow, method, attrs=b""):
    """A signed request from `flow` (0..5; 1 and 4 are TCP, 3 and 5 add FINGERPRINT)."""
    arg = flow * 8 + METHODS.index(method)
    kind = SIGNED if arg < 32 else SIGNED_HI
    return step((arg % 32) * 8 + kind, attrs)


TRANSPORT_UDP = bytes([64, 0])
TRANSPORT_TCP = bytes([95, 0])


def connection_id_attr(i):
    """CONNECTION-ID: the i-th id the core handed out (modulo how many the script holds)."""
    return bytes([120, 1, i])


def peer_attr(i):
    return bytes([20 + i, 0])


def channel_attr(n):
    return bytes([96, 1, n])


def lifetime(secs):
    return bytes([0, 4]) + secs.to_bytes(4, "big")


def clock(arg):
    return step(arg * 8 + CLOCK)


def server_scripts(vectors):
    alloc = signed(0, "allocate", TRANSPORT_UDP)
    session = (
        alloc + alloc
        + signed(0, "permission", peer_attr(0))
        + signed(0, "channel", channel_attr(0) + peer_attr(0))
        + step(PEER + 8 * 0, bytes([0]) + b"hello from peer")
        + step(CHANNEL_DATA, b"media over channel")
        + signed(0, "send", peer_attr(0) + bytes([8, 4]) + b"data")
    )
    yield "session-udp", bytes([0]) + session + clock(10) + signed(0, "refresh", lifetime(600))
    yield "session-delete", bytes([0]) + session + signed(0, "refresh", lifetime(0))
    yield "session-expiry", bytes([0]) + session + clock(31) + clock(31)
    tcp_alloc = signed(1, "allocate", TRANSPORT_UDP)
    yield "tcp-closed", bytes([0]) + tcp_alloc + tcp_alloc + signed(
        1, "permission", peer_attr(1)) + step(CLOSE + 8 * 1)
    fp = signed(3, "allocate", TRANSPORT_UDP)
    yield "static-user-fingerprint", bytes([1]) + fp + fp + signed(
        3, "channel", channel_attr(1) + peer_attr(2))
    expired = signed(2, "allocate", TRANSPORT_UDP)
    yield "expired-rest-user", bytes([0]) + expired + expired
    # Second configuration: quotas, bandwidth cap, loopback peers allowed.
    many = b"".join(signed(f, "allocate", TRANSPORT_UDP) * 2 for f in (3, 5, 3, 0))
    yield "quota", bytes([1]) + many + signed(3, "permission", peer_attr(3)) + step(
        PEER + 8 * 0, bytes([3]) + b"x" * 200)
    yield "draining", bytes([0]) + alloc + alloc + step(CLOSE + 8 * 31) + signed(
        1, "allocate", TRANSPORT_UDP)
    # RFC 6062: the "bogus" method slot is Connect when the script's signed-request count is
    # 1 mod 3 and ConnectionBind when it is 2 mod 3 (src/lib.rs). Flow 4 (TCP, user0) holds a
    # TCP allocation; flow 0 (same user) binds; a peer connects in; a second Connect to the same
    # peer gets 446; the bind timeout and the end of the allocation clean up.
    tcp = signed(4, "allocate", TRANSPORT_TCP)
    yield "tcp-relay", bytes([0]) + (
        tcp + tcp                                              # requests 0, 1
        + signed(4, "permission", peer_attr(0))                # 2
        + signed(0, "allocate", TRANSPORT_UDP)                 # 3: flow 0 learns a nonce
        + signed(4, "bogus", peer_attr(0))                     # 4: Connect
        + signed(0, "bogus", connection_id_attr(0))            # 5: ConnectionBind
        + step(PEER, bytes([0x84]))                            # peer 0 connects to relay 0
        + signed(4, "refresh", lifetime(600))                  # 6
        + signed(4, "bogus", peer_attr(0))                     # 7: Connect again: 446
        + signed(0, "bogus", connection_id_attr(1))            # 8: ConnectionBind
        + clock(3) + step(CLOSE + 8 * 4))
    for name, raw in vectors.items():
        if len(raw) < 256:
            yield "raw-" + name, bytes([0]) + step(RAW_UDP, raw) + step(RAW_TCP + 8, raw)


def jitsi_seeds(binary):
    yield "jitsi_env", "hand.env", (
        b"# docker-jitsi-meet\nTURN_CREDENTIALS=\"s3cr\\\"et\"\nTURN_HOST=turn.example.org\n"
        b"export TURN_PORT=3478\nTURN_TRANSPORT='udp,tcp'\nTURNS_HOST=turn.example.org\n"
        b"TURNS_PORT=5349\nSTUN_HOST=turn.example.org\nSTUN_PORT=3478\nTURN_TTL=86400 # a day\n")
    yield "jitsi_lua", "hand.cfg.lua", (
        b'external_service_secret = "s3cret"\nexternal_services = {\n'
        b'  { type = "stun", host = "turn.example.org", port = 3478 },\n'
        b'  { type = "turn", host = "turn.example.org", port = 3478, transport = "udp",'
        b' secret = true, ttl = 86400, algorithm = "turn" },\n'
        b'  { type = "turns", host = "turn.example.org", port = 5349, transport = "tcp",'
        b' secret = true },\n}\n-- comment\n--[[ long\ncomment ]]\n'
        b'VirtualHost "meet.example.org"\n    modules_enabled = { "external_services" }\n')
    yield "jitsi_lua", "turncredentials.cfg.lua", (
        b'turncredentials_secret = [[s3cret]];\nturncredentials_ttl = 43200\n'
        b'turncredentials = {\n  { type = "stun", host = "10.0.0.1" },\n'
        b'  { type = "turn", host = "10.0.0.1", port = "3478", transport = "tcp" };\n}\n')
    if not binary:
        return
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([binary, "jitsi", "init", "--host", "turn.example.org", "--out", out,
                        "--transports", "udp,tcp"], check=True, stdout=subprocess.DEVNULL)
        for name in sorted(os.listdir(out)):
            data = open(os.path.join(out, name), "rb").read()
            if name.endswith(".lua"):
                yield "jitsi_lua", "init-" + name, data
            elif name.endswith(".conf"):
                yield "conf_file", "init-" + name, data
            else:
                yield "jitsi_env", "init-" + name, data


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else None
    vectors = rfc5769_vectors()
    for name, raw in vectors.items():
        write("stun_codec", "rfc5769-" + name, raw)
        # Stream framing: the vectors back to back, cut into reads of 8 and of 16 bytes.
        stream = b"".join(vectors.values())
        chunked = b"".join(bytes([1]) + stream[i:i + 8] for i in range(0, len(stream), 8))
        write("stream_framing", "rfc5769-8", chunked)
        write("stream_framing", "rfc5769-whole", bytes([255]) + stream[:2040])
    for name, script in server_scripts(vectors):
        write("server", name, script)
    for name in sorted(os.listdir(os.path.join(ROOT, "conf"))):
        if name.endswith(".conf"):
            shutil.copy(os.path.join(ROOT, "conf", name), os.path.join(CORPUS, "conf_file", name))
    for target, name, data in jitsi_seeds(binary):
        write(target, name, data)


if __name__ == "__main__":
    os.makedirs(os.path.join(CORPUS, "conf_file"), exist_ok=True)
    main()
