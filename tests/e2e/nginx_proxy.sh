#!/usr/bin/env bash
# End-to-end PROXY protocol test with a real nginx (Debian's, with its stream module) in front
# of ferroturn, as Jitsi's guide deploys TURNS on 443: one nginx `stream` port with
# `ssl_preread on` routes by SNI between an HTTPS web backend and ferroturn's TLS listener,
# with `proxy_protocol on` toward both; a second stream port puts `proxy_protocol on` in
# front of ferroturn's plain TCP listener.
#
#   tests/e2e/nginx_proxy.sh FERROTURN_BIN
#
# Clients bind 127.0.0.x addresses other than nginx's own 127.0.0.1, so the address
# ferroturn reports (XOR-MAPPED-ADDRESS, the allocation log) shows whether it took the client
# from the PROXY header. Scenarios: turnutils_uclient -t -S through the shared TLS port
# relays (sent == received, 0 lost) and ferroturn logs the clients' own address; a Binding
# over TLS with SNI turn.test answers the client's own address and port; the web backend
# still serves HTTPS by SNI on the same port; uclient -t through the plain TCP proxy relays
# and is logged with its own address; a client connecting straight to the proxied TLS port
# from an untrusted address is refused; the metrics count it all.
# Installs nginx, its stream module and coturn (apt) when missing; nginx runs in the
# foreground as a child of this script with its own prefix and config, and is stopped on exit.
# Everything listens on 127.0.0.1; every wait is bounded.
# Prints one PASS/FAIL line per scenario and ends with `N passed, N failed`.
#
# Environment: E2E_KEEP=1 keeps the work dir, E2E_RESULT_FILE receives "PASSED FAILED".
set -euo pipefail

[[ $# -eq 1 ]] || {
    echo "usage: $0 FERROTURN_BIN" >&2
    exit 2
}
BIN=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
[[ -x "$BIN" ]] || e2e_die "ferroturn binary '$BIN' not found or not executable"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

nginx_service_running() {
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
        return 0
    fi
    [[ -x /etc/init.d/nginx ]] && /etc/init.d/nginx status >/dev/null 2>&1
}

# A package install may start the system nginx on :80; this test needs none (one that ran
# before the install is left alone).
stop_system_nginx() {
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
        e2e_log "the nginx package started a daemon; stopping it"
        as_root systemctl stop nginx || true
    elif [[ -x /etc/init.d/nginx ]] && /etc/init.d/nginx status >/dev/null 2>&1; then
        e2e_log "the nginx package started a daemon; stopping it"
        as_root /etc/init.d/nginx stop || true
    fi
}

install_missing() {
    local need=()
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
    [[ -f "$STREAM_MODULE" ]] || need+=(libnginx-mod-stream)
    command -v turnutils_uclient >/dev/null 2>&1 || need+=(coturn)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    ((${#need[@]} == 0)) && return 0
    local was_running=0
    nginx_service_running && was_running=1
    e2e_log "installing ${need[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    if ((was_running == 0)); then
        stop_system_nginx
    fi
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet coturn 2>/dev/null; then
        as_root systemctl stop coturn || true
    fi
}
install_missing
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$NGINX" ]] || e2e_die "nginx missing after install"
[[ -f "$STREAM_MODULE" ]] || e2e_die "nginx stream module ($STREAM_MODULE) missing after install"

e2e_init
SECRET=$(e2e_random_hex 16)
REALM=ferroturn.test
N=${UCLIENT_N:-50}
M=${UCLIENT_M:-4}
L=${UCLIENT_L:-170}

TURN_PORT=$(e2e_free_ports 1)
TCP_PROXIED=$(e2e_free_ports 1 "$TURN_PORT")
TLS_PORT=$(e2e_free_ports 1 "$TURN_PORT,$TCP_PROXIED")
RELAY_BASE=$(e2e_free_ports 100 "$TURN_PORT,$TCP_PROXIED,$TLS_PORT")
AVOID="$TURN_PORT,$TCP_PROXIED,$TLS_PORT"
FRONT_TLS=$(e2e_free_ports 1 "$AVOID")
FRONT_TCP=$(e2e_free_ports 1 "$AVOID,$FRONT_TLS")
WEB_PORT=$(e2e_free_ports 1 "$AVOID,$FRONT_TLS,$FRONT_TCP")
METRICS_PORT=$(e2e_free_ports 1 "$AVOID,$FRONT_TLS,$FRONT_TCP,$WEB_PORT")
PEER_PORT=$(e2e_free_ports 2 "$AVOID,$FRONT_TLS,$FRONT_TCP,$WEB_PORT,$METRICS_PORT")

# Distinct client addresses: nginx reaches ferroturn from 127.0.0.1, the clients never do.
UCLIENT_TLS_IP=127.0.0.5
PROBE_TLS_IP=127.0.0.6
UCLIENT_TCP_IP=127.0.0.7
PROBE_TCP_IP=127.0.0.8
UNTRUSTED_IP=127.0.0.9

for name in turn web; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$name.test" \
        -keyout "$E2E_DIR/$name-key.pem" -out "$E2E_DIR/$name-cert.pem" >/dev/null 2>&1 ||
        e2e_die "cannot create the $name test certificate"
done

cat >"$E2E_DIR/turnserver.conf" <<EOF
# generated by tests/e2e/nginx_proxy.sh
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$TURN_PORT
alt-listening-port=$TCP_PROXIED
tls-listening-port=$TLS_PORT
cert=$E2E_DIR/turn-cert.pem
pkey=$E2E_DIR/turn-key.pem
proxy-protocol-port=$TCP_PROXIED,$TLS_PORT
proxy-protocol-trusted=127.0.0.1
min-port=$RELAY_BASE
max-port=$((RELAY_BASE + 99))
realm=$REALM
use-auth-secret
static-auth-secret=$SECRET
allow-loopback-peers
rfc5766-channel-numbers
fingerprint
prometheus
prometheus-address=127.0.0.1
prometheus-port=$METRICS_PORT
EOF

NGX=$E2E_DIR/nginx
mkdir -p "$NGX/logs" "$NGX/tmp"
cat >"$NGX/nginx.conf" <<EOF
# generated by tests/e2e/nginx_proxy.sh: foreground, one process, everything under $NGX
load_module $STREAM_MODULE;
daemon off;
master_process off;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log info;
events { worker_connections 256; }

http {
    access_log $NGX/logs/access.log;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    # The web site behind the same port: it gets the PROXY header too.
    server {
        listen 127.0.0.1:$WEB_PORT ssl proxy_protocol;
        server_name web.test;
        ssl_certificate $E2E_DIR/web-cert.pem;
        ssl_certificate_key $E2E_DIR/web-key.pem;
        location / {
            default_type text/plain;
            return 200 "ferroturn-e2e-web-backend client=\$proxy_protocol_addr\n";
        }
    }
}

stream {
    # One public TLS port: the web site and TURNS by SNI; TURNS also for clients that send
    # no SNI (turnutils_uclient).
    map \$ssl_preread_server_name \$tls_backend {
        web.test 127.0.0.1:$WEB_PORT;
        turn.test 127.0.0.1:$TLS_PORT;
        default 127.0.0.1:$TLS_PORT;
    }
    server {
        listen 127.0.0.1:$FRONT_TLS;
        ssl_preread on;
        proxy_pass \$tls_backend;
        proxy_protocol on;
    }
    # TURN over plain TCP behind the balancer.
    server {
        listen 127.0.0.1:$FRONT_TCP;
        proxy_pass 127.0.0.1:$TCP_PROXIED;
        proxy_protocol on;
    }
}
EOF

# wait_tcp ADDR PORT: waits (max 10 s) until something accepts TCP connections there.
wait_tcp() {
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
deadline = time.time() + 10
while time.time() < deadline:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

# stun_binding MODE SOURCE_IP PORT [SNI]: one Binding request over TCP (MODE=tcp) or TLS
# (MODE=tls, with SNI) from SOURCE_IP to 127.0.0.1:PORT. Prints "MAPPED OWN": the
# XOR-MAPPED-ADDRESS answered and the client's own address.
stun_binding() {
    python3 - "$@" <<'PY'
import os, socket, ssl, struct, sys
mode, source, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sni = sys.argv[4] if len(sys.argv) > 4 else None
raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
raw.settimeout(5)
raw.bind((source, 0))
raw.connect(("127.0.0.1", port))
own = "%s:%d" % raw.getsockname()
s = raw
if mode == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(raw, server_hostname=sni)
tid = os.urandom(12)
s.sendall(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid)
def exact(n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            sys.exit("connection closed before the response")
        buf += chunk
    return buf
head = exact(20)
mtype, mlen, cookie = struct.unpack("!HHI", head[:8])
body = exact(mlen)
if mtype != 0x0101 or head[8:20] != tid:
    sys.exit("not a Binding success response: type %#x" % mtype)
pos = 0
while pos + 4 <= len(body):
    atype, alen = struct.unpack("!HH", body[pos:pos + 4])
    if atype == 0x0020 and body[pos + 5] == 1:
        xport = struct.unpack("!H", body[pos + 6:pos + 8])[0] ^ 0x2112
        xip = struct.unpack("!I", body[pos + 8:pos + 12])[0] ^ 0x2112A442
        print("%s:%d %s" % (socket.inet_ntoa(struct.pack("!I", xip)), xport, own))
        sys.exit(0)
    pos += 4 + ((alen + 3) & ~3)
sys.exit("no IPv4 XOR-MAPPED-ADDRESS")
PY
}

# https_get SNI PORT: GET / over TLS with SNI from 127.0.0.10; prints the body.
https_get() {
    python3 - "$@" <<'PY'
import socket, ssl, sys
sni, port = sys.argv[1], int(sys.argv[2])
raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
raw.settimeout(5)
raw.bind(("127.0.0.10", 0))
raw.connect(("127.0.0.1", port))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(raw, server_hostname=sni)
s.sendall(("GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % sni).encode())
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), "|", body.decode().strip())
PY
}

# metric NAME_AND_LABELS: the value of one sample from ferroturn's /metrics.
metric() {
    python3 - "$METRICS_PORT" "$1" <<'PY'
import sys, urllib.request
port, key = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=5).read().decode()
for line in text.splitlines():
    if line.startswith(key + " "):
        print(int(float(line.split()[-1])))
        sys.exit(0)
print(0)
PY
}

# check_mapped NAME OUTPUT: passes when the answered address is the client's own.
check_mapped() {
    local name=$1 out=$2 mapped own
    read -r mapped own <<<"$out"
    if [[ -n "$mapped" && "$mapped" == "$own" ]]; then
        e2e_record "$name" PASS "XOR-MAPPED-ADDRESS $mapped is the client's own address (nginx connects from 127.0.0.1)"
    else
        e2e_record "$name" FAIL "XOR-MAPPED-ADDRESS '${mapped:-none}' but the client is '${own:-?}' ($out)"
    fi
}

# check_logged NAME IP TRANSPORT: passes when every allocation over TRANSPORT was logged with
# the client address IP and at least one was.
check_logged() {
    local name=$1 ip=$2 transport=$3 log="$E2E_DIR/ferroturn.log" ours others
    ours=$(grep "allocation created" "$log" | grep -F "transport=$transport" | grep -cF "client=$ip:" || true)
    others=$(grep "allocation created" "$log" | grep -F "transport=$transport" | grep -vcF "client=$ip:" || true)
    if ((ours > 0 && others == 0)); then
        e2e_record "$name" PASS "$ours $transport allocations logged with client=$ip:*, none with another address"
    else
        e2e_record "$name" FAIL "$ours $transport allocations from $ip, $others from other addresses (log: $log)"
    fi
}

e2e_start peer turnutils_peer -L 127.0.0.1 -p "$PEER_PORT"
e2e_wait_udp_bound 127.0.0.1 "$PEER_PORT" || e2e_die "turnutils_peer did not bind 127.0.0.1:$PEER_PORT"
e2e_start ferroturn "$BIN" -c "$E2E_DIR/turnserver.conf"
E2E_SERVER=ferroturn
e2e_wait_stun ferroturn 127.0.0.1 "$TURN_PORT" || e2e_die "ferroturn did not come up"
"$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -t >"$E2E_DIR/nginx-t.log" 2>&1 ||
    e2e_die "nginx rejects the generated config: $(tail -n 5 "$E2E_DIR/nginx-t.log")"
e2e_start nginx "$NGINX" -p "$NGX" -c "$NGX/nginx.conf"
wait_tcp 127.0.0.1 "$FRONT_TLS" && wait_tcp 127.0.0.1 "$FRONT_TCP" ||
    e2e_die "nginx did not listen on $FRONT_TLS/$FRONT_TCP: $(tail -n 5 "$NGX/logs/error.log" 2>/dev/null)"
e2e_log "nginx: TLS front $FRONT_TLS (web.test -> $WEB_PORT, default -> ferroturn $TLS_PORT), TCP front $FRONT_TCP -> $TCP_PROXIED"

PEER=(-e 127.0.0.1 -r "$PEER_PORT")
LOAD=(-n "$N" -m "$M" -l "$L")

# --- TURNS through the shared SNI-routed port ---------------------------------
e2e_uclient tls-via-nginx-channels -t -S -L "$UCLIENT_TLS_IP" -p "$FRONT_TLS" "${LOAD[@]}" \
    -W "$SECRET" -u alice "${PEER[@]}" 127.0.0.1 || true
e2e_uclient tls-via-nginx-send -t -S -s -L "$UCLIENT_TLS_IP" -p "$FRONT_TLS" "${LOAD[@]}" \
    -W "$SECRET" -u alice "${PEER[@]}" 127.0.0.1 || true
check_logged tls-client-address-logged "$UCLIENT_TLS_IP" tls
out=$(stun_binding tls "$PROBE_TLS_IP" "$FRONT_TLS" turn.test 2>&1 || true)
check_mapped tls-sni-binding-sees-client "$out"

# --- The web site on the same port, by SNI ------------------------------------
out=$(https_get web.test "$FRONT_TLS" 2>&1 || true)
if [[ "$out" == "HTTP/1.1 200 OK | ferroturn-e2e-web-backend client=127.0.0.10" ]]; then
    e2e_record web-by-sni-same-port PASS "$out"
else
    e2e_record web-by-sni-same-port FAIL "expected the web backend's page for 127.0.0.10, got: $out"
fi

# --- TURN over plain TCP behind nginx -----------------------------------------
e2e_uclient tcp-via-nginx-channels -t -L "$UCLIENT_TCP_IP" -p "$FRONT_TCP" "${LOAD[@]}" \
    -W "$SECRET" -u alice "${PEER[@]}" 127.0.0.1 || true
check_logged tcp-client-address-logged "$UCLIENT_TCP_IP" tcp
out=$(stun_binding tcp "$PROBE_TCP_IP" "$FRONT_TCP" 2>&1 || true)
check_mapped tcp-binding-sees-client "$out"

# --- Straight to the proxied ports from an untrusted address ------------------
untrusted_before=$(metric 'ferroturn_proxy_protocol_connections_total{result="untrusted"}')
e2e_uclient_must_fail tls-direct-untrusted-refused -t -S -L "$UNTRUSTED_IP" -p "$TLS_PORT" -n 5 -m 1 \
    -W "$SECRET" -u alice "${PEER[@]}" 127.0.0.1 || true
out=$(stun_binding tcp "$UNTRUSTED_IP" "$TCP_PROXIED" 2>&1 || true)
if [[ "$out" == *"closed before the response"* || "$out" == *"reset"* ]]; then
    e2e_record tcp-direct-untrusted-closed PASS "closed without an answer"
else
    e2e_record tcp-direct-untrusted-closed FAIL "expected the connection to be closed, got: $out"
fi

# --- What the metrics counted ---------------------------------------------------
accepted=$(metric 'ferroturn_proxy_protocol_connections_total{result="accepted"}')
untrusted=$(metric 'ferroturn_proxy_protocol_connections_total{result="untrusted"}')
malformed=$(metric 'ferroturn_proxy_protocol_connections_total{result="malformed"}')
missing=$(metric 'ferroturn_proxy_protocol_connections_total{result="missing"}')
# 2 TLS uclient runs + 1 TCP run, M clients each, plus the two Binding probes.
want=$((3 * M + 2))
if ((accepted >= want && untrusted > untrusted_before && malformed == 0 && missing == 0)); then
    e2e_record proxy-metrics PASS "accepted=$accepted (>= $want) untrusted=$untrusted malformed=0 missing=0"
else
    e2e_record proxy-metrics FAIL "accepted=$accepted (want >= $want) untrusted=$untrusted (before: $untrusted_before) malformed=$malformed missing=$missing"
fi

e2e_stop nginx
e2e_stop ferroturn
E2E_SERVER=""
e2e_summary "nginx stream + PROXY protocol in front of ferroturn ($BIN)"
