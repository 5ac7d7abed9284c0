#!/usr/bin/env python3
"""Helpers for tests/e2e/webrtc/run.sh (standard library only).

  driver.py serve DIR PORTFILE
      Loopback HTTP server: GET / serves page.html from this folder; the page
      POSTs progress to /log/NAME (appended to DIR/NAME.page.log) and its
      result to /result/NAME (written to DIR/NAME.result.json). The chosen
      port is written to PORTFILE once the socket is bound.

  driver.py url HTTP_PORT NAME SECRET TTL TIMEOUT_MS MESSAGES URL_A URL_B
      Prints the page URL for one scenario: two RTCIceServer entries with TURN
      REST credentials minted from SECRET (username "<expiry>:webrtc-NAME-a|b",
      password base64(HMAC-SHA1(SECRET, username))).

  driver.py check NAME RESULT_JSON FERROTURN_LOG TRANSPORT MIN_PORT MAX_PORT
      Judges one scenario. Prints one line of details; exits 0 when it passed.
      Passing needs: every message delivered in order both ways; on both peer
      connections the selected pair's local and remote candidates are of type
      relay, on 127.0.0.1 (or $WEBRTC_RELAY_IP) with a port in MIN_PORT..MAX_PORT; each of those
      addresses is one ferroturn logged as `relayed=` for that peer's user; the
      local candidate's relayProtocol and every allocation ferroturn logged for
      the scenario's users use TRANSPORT.

  driver.py check-refused NAME RESULT_JSON FERROTURN_LOG
      Judges the negative run (Chromium without the test certificate in its
      NSS db): passes when the page did not connect, reported ICE candidate
      errors, and ferroturn logged no allocation for the scenario's users.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def serve(out_dir, port_file):
    with open(os.path.join(HERE, "page.html"), "rb") as f:
        page = f.read()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # the access log would only be noise
            pass

        def _reply(self, code, body=b"", ctype="text/plain"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = urllib.parse.urlsplit(self.path).path
            if path in ("/", "/page.html"):
                self._reply(200, page, "text/html; charset=utf-8")
            elif path == "/ping":
                self._reply(200, b"ok")
            else:
                self._reply(404, b"not found")

        def do_POST(self):
            parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
            length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
            body = self.rfile.read(length)
            if len(parts) != 2 or parts[0] not in ("log", "result") or not NAME_RE.match(parts[1]):
                self._reply(404, b"not found")
                return
            name = parts[1]
            if parts[0] == "log":
                with open(os.path.join(out_dir, name + ".page.log"), "ab") as f:
                    f.write(body + b"\n")
            else:
                # Written under a temporary name and renamed, so the script
                # polling for the file never reads half of it.
                final = os.path.join(out_dir, name + ".result.json")
                with open(final + ".tmp", "wb") as f:
                    f.write(body)
                os.replace(final + ".tmp", final)
            self._reply(200, b"ok")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


def rest_credential(secret, user, ttl):
    username = "%d:%s" % (int(time.time()) + ttl, user)
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def url(http_port, name, secret, ttl, timeout_ms, messages, url_a, url_b):
    cfg = {"name": name, "messages": int(messages), "timeoutMs": int(timeout_ms)}
    for side, turn_url in (("a", url_a), ("b", url_b)):
        username, password = rest_credential(secret, "webrtc-%s-%s" % (name, side), int(ttl))
        cfg[side] = {"urls": turn_url, "username": username, "credential": password}
    fragment = urllib.parse.quote(json.dumps(cfg, separators=(",", ":")), safe="")
    print("http://127.0.0.1:%d/#%s" % (int(http_port), fragment))


# `allocation created` lines as tracing prints them: key=value fields, strings quoted.
FIELD_RE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def logged_allocations(log_path, name):
    """{"a": [(transport, relayed)], "b": [...]} for this scenario's two users."""
    found = {"a": [], "b": []}
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    with open(log_path, errors="replace") as f:
        for line in f:
            line = ansi.sub("", line)
            if "allocation created" not in line:
                continue
            fields = {k: v.strip('"') for k, v in FIELD_RE.findall(line)}
            user = fields.get("user", "")
            for side in ("a", "b"):
                if user.endswith(":webrtc-%s-%s" % (name, side)):
                    found[side].append((fields.get("transport", "?"), fields.get("relayed", "?")))
    return found


def check(name, result_path, log_path, transport, min_port, max_port):
    min_port, max_port = int(min_port), int(max_port)
    # The relay address the candidates must carry: loopback here, the VPS's in tests/netns.
    relay_ip = os.environ.get("WEBRTC_RELAY_IP", "127.0.0.1")
    problems = []
    try:
        with open(result_path) as f:
            result = json.load(f)
    except (OSError, ValueError) as e:
        print("no result from the page (%s)" % e)
        return 1

    if not result.get("ok"):
        problems.append("page: %s (ice A=%s B=%s; A offered %d candidates, B %d)" % (
            result.get("error"), result.get("iceA"), result.get("iceB"),
            len(result.get("candidatesA") or []), len(result.get("candidatesB") or [])))
    else:
        for key in ("receivedAtA", "receivedAtB"):
            if result.get(key) != result.get("sent"):
                problems.append("%s=%s of %s" % (key, result.get(key), result.get("sent")))

    allocs = logged_allocations(log_path, name)
    relayed = {side: {r for _, r in allocs[side]} for side in allocs}
    for side in ("a", "b"):
        if not allocs[side]:
            problems.append("ferroturn logged no allocation for user webrtc-%s-%s" % (name, side))
        wrong = sorted({t for t, _ in allocs[side] if t != transport})
        if wrong:
            problems.append("ferroturn logged transport %s for side %s, expected %s" % (
                ",".join(wrong), side, transport))

    def judge_candidate(label, cand, owner):
        if not cand:
            problems.append("%s: no candidate in stats" % label)
            return "?"
        addr = "%s:%s" % (cand.get("address"), cand.get("port"))
        if cand.get("type") != "relay":
            problems.append("%s type %s, not relay" % (label, cand.get("type")))
        port = cand.get("port") or 0
        if cand.get("address") != relay_ip or not (min_port <= port <= max_port):
            problems.append("%s %s outside %s:%d-%d" % (label, addr, relay_ip, min_port, max_port))
        if addr not in relayed[owner]:
            problems.append("%s %s is not an address ferroturn handed to side %s (%s)" % (
                label, addr, owner, ",".join(sorted(relayed[owner])) or "none"))
        return "%s %s" % (cand.get("type"), addr)

    summary = []
    if result.get("ok"):
        for side, other in (("a", "b"), ("b", "a")):
            pair = result.get("pair" + side.upper())
            if not pair:
                problems.append("pc %s: no selected candidate pair" % side.upper())
                continue
            local = judge_candidate("pc %s local" % side.upper(), pair.get("local"), side)
            remote = judge_candidate("pc %s remote" % side.upper(), pair.get("remote"), other)
            proto = (pair.get("local") or {}).get("relayProtocol")
            if proto != transport:
                problems.append("pc %s local relayProtocol %s, expected %s" % (side.upper(), proto, transport))
            summary.append("%s: local=%s (relayProtocol=%s) remote=%s" % (side.upper(), local, proto, remote))

    # Informational only: Chrome's controlled side may still report its own
    # writable pair when the stats are read, which is not ferroturn's doing.
    if result.get("ok") and result.get("pairA") and result.get("pairB"):
        la, ra = result["pairA"].get("local") or {}, result["pairA"].get("remote") or {}
        lb, rb = result["pairB"].get("local") or {}, result["pairB"].get("remote") or {}
        same = (la.get("port"), ra.get("port")) == (rb.get("port"), lb.get("port"))
        summary.append("pairs %s" % ("agree" if same else "differ"))
    logged = "; ".join("%s %s" % (t, r) for side in ("a", "b") for t, r in allocs[side])
    detail = "%s | ferroturn: %s | msgs %s/%s each way in %s" % (
        "; ".join(summary) or "no pair", logged or "nothing", min(result.get("receivedAtA") or 0,
        result.get("receivedAtB") or 0), result.get("sent"), result.get("elapsed"))
    if problems:
        print("%s -- %s" % (detail, "; ".join(problems)))
        return 1
    print(detail)
    return 0


def check_refused(name, result_path, log_path):
    """The untrusted-certificate run: Chromium must refuse the TLS connection,
    so the page reports a failure with candidate errors and ferroturn logs no
    allocation for the scenario's users."""
    try:
        with open(result_path) as f:
            result = json.load(f)
    except (OSError, ValueError) as e:
        print("no result from the page (%s)" % e)
        return 1
    allocs = logged_allocations(log_path, name)
    errors = sorted(set((result.get("candidateErrorsA") or []) + (result.get("candidateErrorsB") or [])))
    detail = "page: %s; candidate errors: %s; in %s" % (
        result.get("error") or "connected", ", ".join(errors) or "none", result.get("elapsed"))
    problems = []
    if result.get("ok"):
        problems.append("connected although Chromium should not trust the certificate")
    if not errors:
        problems.append("no icecandidateerror reported")
    made = ["%s %s" % a for side in ("a", "b") for a in allocs[side]]
    if made:
        problems.append("ferroturn allocated %s" % ", ".join(made))
    if problems:
        print("%s -- %s" % (detail, "; ".join(problems)))
        return 1
    print(detail)
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "serve" and len(argv) == 4:
        serve(argv[2], argv[3])
        return 0
    if len(argv) >= 2 and argv[1] == "url" and len(argv) == 10:
        url(*argv[2:])
        return 0
    if len(argv) >= 2 and argv[1] == "check" and len(argv) == 8:
        return check(*argv[2:])
    if len(argv) >= 2 and argv[1] == "check-refused" and len(argv) == 5:
        return check_refused(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
