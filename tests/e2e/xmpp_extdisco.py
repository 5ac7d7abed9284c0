#!/usr/bin/env python3
"""Minimal XMPP client for the Prosody end-to-end test (standard library only).

Logs in with SASL PLAIN over a plain TCP stream on loopback, binds a resource,
checks the server advertises urn:xmpp:extdisco:2 in disco#info, then sends the
external-services query the way lib-jitsi-meet does:

    <iq type='get' to='DOMAIN'><services xmlns='urn:xmpp:extdisco:2'/></iq>

and prints every returned <service/> as one JSON object per line. Exits 1 on
any error. Every read is bounded by a timeout.

usage: xmpp_extdisco.py HOST PORT DOMAIN USER PASSWORD
"""
import base64
import json
import re
import socket
import sys
import time
import xml.etree.ElementTree as ET

TIMEOUT = 10.0
EXTDISCO = "urn:xmpp:extdisco:2"


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = ""

    def send(self, text):
        self.sock.sendall(text.encode())

    def read_until(self, pattern):
        """Reads until `pattern` (regex) matches the buffer; returns and consumes up to the match end."""
        deadline = time.monotonic() + TIMEOUT
        rx = re.compile(pattern, re.S)
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[: m.end()], self.buf[m.end():]
                return out
            if time.monotonic() > deadline:
                raise TimeoutError("waiting for %r; got %r" % (pattern, self.buf[-500:]))
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the stream; last data %r" % self.buf[-500:])
            self.buf += data.decode("utf-8", "replace")

    def open_stream(self, domain):
        self.send(
            "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams'>" % domain
        )
        return self.read_until(r"</stream:features>")

    def iq(self, ident, body, to=None):
        attrs = " to='%s'" % to if to else ""
        self.send("<iq type='get' id='%s'%s>%s</iq>" % (ident, attrs, body))
        text = self.read_until(r"<iq[^>]*id=['\"]%s['\"][^>]*(/>|>.*?</iq>)" % ident)
        start = text.rfind("<iq")
        # Give the fragment the default namespace the stream declared, so it parses alone.
        frag = text[start:].replace("<iq", "<iq xmlns:stream='http://etherx.jabber.org/streams'", 1)
        return ET.fromstring(frag)


def main():
    host, port, domain, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    c = Conn(host, port)
    features = c.open_stream(domain)
    if "PLAIN" not in features:
        raise SystemExit("server offers no SASL PLAIN: %s" % features)
    token = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % token)
    answer = c.read_until(r"<(success|failure)[^>]*(/>|>.*?</(success|failure)>)")
    if "<success" not in answer:
        raise SystemExit("login refused: %s" % answer)
    c.open_stream(domain)
    c.send(
        "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<resource>e2e</resource></bind></iq>"
    )
    c.read_until(r"<iq[^>]*id=['\"]bind1['\"].*?</iq>")
    info = c.iq("disco1", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to=domain)
    feats = [f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")]
    if EXTDISCO not in feats:
        raise SystemExit("%s not advertised; features: %s" % (EXTDISCO, feats))
    reply = c.iq("ext1", "<services xmlns='%s'/>" % EXTDISCO, to=domain)
    if reply.get("type") != "result":
        raise SystemExit("services query failed: %s" % ET.tostring(reply).decode())
    services = [dict(s.attrib) for s in reply.iter("{%s}service" % EXTDISCO)]
    if not services:
        raise SystemExit("no services returned")
    for s in services:
        print(json.dumps(s, sort_keys=True))
    c.send("</stream:stream>")
    c.sock.close()


if __name__ == "__main__":
    try:
        main()
    except (OSError, ET.ParseError, TimeoutError) as e:
        print("xmpp client error: %s" % e, file=sys.stderr)
        sys.exit(1)
