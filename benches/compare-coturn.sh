#!/usr/bin/env bash
# Runs the same `ferroturn bench` scenarios against ferroturn (release build) and coturn on
# this machine and prints a side-by-side table. Run by hand (not part of the test suite):
#
#     bash benches/compare-coturn.sh            # about 10 minutes
#     QUICK=1 bash benches/compare-coturn.sh    # shorter windows, for trying the script
#     TURNSERVER=.../bin/turnserver UCLIENT=.../bin/turnutils_uclient bash benches/compare-coturn.sh
#         # against a coturn built from source, with its unpaced flood (-Y packet) row
#     NETNS=1 bash benches/compare-coturn.sh   # (root) the kernel fast path's measurement
#         # instead: server-core busy time per packet for coturn, ferroturn in user space and
#         # ferroturn's fast path, in namespaces (benches/fast-path-netns.sh)
#     STREAM_ONLY=1 bash benches/compare-coturn.sh   # only the TURN/TCP and TURNS rows (~6 min)
#     ROUNDS=5 COALESCE_US=300 ...   # more alternating rounds of the relaying rows; another window
#
# The TURN/TCP and TURNS rows: 50 participants × 200 pps × 170 B on their own TCP or TLS
# connections (peers on UDP); TLS handshakes per second (each connection proven by a STUN
# Binding round trip) and server RSS per idle TLS connection with 10,000 held. A self-signed
# certificate is made for the run (openssl); the load tool does not verify it (--tls-insecure).
#
# Server pinned to CPU 0 with one relay thread, load tool pinned to CPU 1, loopback only.
# Raw JSON goes to benches/results/, the table to benches/results/summary.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n "${NETNS:-}" ]]; then
    # Loopback cannot show a kernel fast path's cost (see benches/fast-path-netns.sh).
    exec bash "$ROOT/benches/fast-path-netns.sh"
fi
OUT="$ROOT/benches/results"
WORK=$(mktemp -d /tmp/ferroturn-compare.XXXXXX)
SECRET="compare-$(date +%s)-secret"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET_DIR/release/ferroturn"
SERVER_CPU=${SERVER_CPU:-0}
# The window of the rows that show ferroturn with poll-coalesce-us (off by default).
COALESCE_US=${COALESCE_US:-500}
CLIENT_CPU=${CLIENT_CPU:-1}
if [[ -n "${QUICK:-}" ]]; then MEASURE=4; STEP=2; HOLD_N=2000; LEVEL=3; else MEASURE=10; STEP=3; HOLD_N=10000; LEVEL=5; fi
# A turnutils_uclient with the unpaced load generator (-Y packet, coturn >= 4.17) for the flood
# row; Debian's 4.6.1 has none, so the row is skipped unless UCLIENT points at one.
UCLIENT=${UCLIENT:-turnutils_uclient}
# The coturn to compare against (e.g. a 4.17 build: TURNSERVER=/path/to/bin/turnserver).
TURNSERVER=${TURNSERVER:-turnserver}
PEER_BIN=${PEER_BIN:-$(dirname "$(command -v "$UCLIENT" || echo /usr/bin/x)")/turnutils_peer}
mkdir -p "$OUT"

# 10,000 held TLS connections need as many descriptors in the server and in the load tool.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building ferroturn (release)"
(cd "$ROOT" && cargo build --release --quiet)

if ! command -v turnserver >/dev/null; then
    echo "== installing coturn"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null
    # The package may start its own daemon; only ours may run during the measurements.
    service coturn stop >/dev/null 2>&1 || true
fi
if pgrep -x turnserver >/dev/null; then
    echo "warning: a turnserver not started by this script is running; results may be disturbed" >&2
fi

# A port free for UDP and for a TCP listener (after the held-connection runs, thousands of
# ephemeral ports sit in TIME_WAIT and cannot be listened on).
free_port() { python3 - <<'PY'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
        t.listen()
    except OSError:
        continue
    print(port)
    break
PY
}

# One config for both servers. The relay range lies below the ephemeral range (32768+) so that
# 10,000 client sockets and 10,000 relay sockets never compete for a port. With TLS_PORT set
# the servers also listen for TLS there (the stream rows).
write_conf() { # name port
    local tls_lines="no-tls"
    if [[ -n "${TLS_PORT:-}" ]]; then
        tls_lines="tls-listening-port=$TLS_PORT
cert=$WORK/cert.pem
pkey=$WORK/key.pem"
    fi
    cat > "$WORK/$1.conf" <<CONF
listening-ip=127.0.0.1
listening-port=$2
relay-ip=127.0.0.1
min-port=10000
max-port=29999
allow-loopback-peers
use-auth-secret
static-auth-secret=$SECRET
realm=bench.local
relay-threads=1
no-cli
$tls_lines
no-dtls
no-tcp-relay
no-stdout-log
simple-log
log-file=$WORK/$1.log
pidfile=$WORK/$1.pid
CONF
}

start_server() { # name
    PORT=$(free_port)
    if [[ -n "${STREAM:-}" ]]; then TLS_PORT=$(free_port); else TLS_PORT=""; fi
    write_conf "$1" "$PORT"
    # coturn has no per-address connection cap; ferroturn's (256 by default) would refuse the
    # held connections, which all come from 127.0.0.1.
    local extra=()
    if [[ -n "${STREAM:-}" ]]; then extra=(--max-tcp-connections-per-ip 0); fi
    case "$1" in
        ferroturn) taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/$1.conf" --relay-threads 1 \
            "${extra[@]}" >/dev/null 2>&1 & ;;
        ferroturn-poll1ms) taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/$1.conf" --relay-threads 1 \
            --poll-interval-ms 1 "${extra[@]}" >/dev/null 2>&1 & ;;
        ferroturn-coalesce) taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/$1.conf" --relay-threads 1 \
            --poll-coalesce-us "$COALESCE_US" "${extra[@]}" >/dev/null 2>&1 & ;;
        coturn) taskset -c "$SERVER_CPU" "$TURNSERVER" -c "$WORK/$1.conf" >/dev/null 2>&1 & ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 1 50); do
        if python3 - "$PORT" <<'PY' 2>/dev/null; then break; fi
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
PY
        sleep 0.1
    done
    # coturn opens its TCP/TLS listeners after the UDP one.
    if [[ -n "$TLS_PORT" ]]; then
        for _ in $(seq 1 50); do
            if python3 - "$PORT" "$TLS_PORT" <<'PY' 2>/dev/null; then break; fi
import socket, sys
for p in sys.argv[1:]:
    socket.create_connection(("127.0.0.1", int(p)), timeout=1).close()
PY
            sleep 0.1
        done
    fi
    sleep 0.5
    kill -0 "$SERVER_PID"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    # coturn 4.17 drains for a while on SIGTERM; the next run needs its ports.
    for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    sleep 0.5
}

bench() { # name scenario args...
    local name=$1 scenario=$2
    shift 2
    start_server "$name"
    echo "== $name: $scenario"
    taskset -c "$CLIENT_CPU" "$BIN" bench --server "127.0.0.1:$PORT" --secret "$SECRET" \
        --server-pid "$SERVER_PID" --json "$OUT/$name-$scenario.json" "$@" | cut -c1-400
    stop_server
}

# 20k pps each way: 100 participants × 200 pps × 100 B (as in shared/perf-notes.md).
EQUAL=(--profile custom --rate 200 --size 100 --participants 100 --duration "$MEASURE")
# Saturation: steps of 20 participants × 500 pps (10k pps each way), loss decides.
RAMP=(--mode ramp --profile custom --rate 500 --size 100 --start 20 --step 20
      --max-participants 400 --step-duration "$STEP" --max-p99-ms 1000 --time-limit 150)
HOLD=(--mode hold --count "$HOLD_N" --duration 5 --concurrency 64)
# Capacity by the same ramp, then 25/50/75 % (latency) and 1.5x/2x/4x (goodput) of it.
OVERLOAD=(--mode overload --profile custom --rate 500 --size 100 --start 20 --step 20
          --max-participants 400 --step-duration "$STEP" --max-p99-ms 1000 --time-limit 150
          --duration "$LEVEL")
ALLOC=(--mode alloc --count 50000 --concurrency 32 --duration "$MEASURE")

# TURN/TCP and TURNS: each participant on its own connection, 50 × 200 pps × 170 B (10k pps each
# way), the load lib-jitsi-meet's videobridge connections put on a relay.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
STREAM_LOAD=(--profile custom --rate 200 --size 170 --participants 50 --duration "$MEASURE")
if [[ -n "${QUICK:-}" ]]; then CONN_N=2000; else CONN_N=10000; fi
bench_stream() { # name scenario args... (TLS_PORT is the server's TLS port)
    local name=$1 scenario=$2
    shift 2
    STREAM=1 start_server "$name"
    local port=$PORT
    if [[ "$*" == *"--transport tls"* ]]; then port=$TLS_PORT; fi
    echo "== $name: $scenario"
    taskset -c "$CLIENT_CPU" "$BIN" bench --server "127.0.0.1:$port" --secret "$SECRET" \
        --server-pid "$SERVER_PID" --json "$OUT/$name-$scenario.json" "$@" | cut -c1-400
    stop_server
}
# The relaying rows alternate the servers round by round (ROUNDS, default 3) and the summary
# takes each server's median: on a shared VM the cost of a wake-up drifts within minutes, and
# back-to-back rounds put every server through the same drift.
ROUNDS=${ROUNDS:-$([[ -n "${QUICK:-}" ]] && echo 1 || echo 3)}
for round in $(seq 1 "$ROUNDS"); do
    for t in tcp tls; do
        tls_args=()
        if [[ $t == tls ]]; then tls_args=(--tls-insecure); fi
        for name in coturn ferroturn ferroturn-coalesce; do
            bench_stream "$name" "$t-r$round" --transport "$t" "${tls_args[@]}" "${STREAM_LOAD[@]}"
        done
    done
done
for name in coturn ferroturn; do
    bench_stream "$name" tls-conns --transport tls --tls-insecure --mode handshake \
        --count "$CONN_N" --concurrency 32 --duration 5
done

if [[ -n "${STREAM_ONLY:-}" ]]; then :; else
for name in coturn ferroturn; do
    bench "$name" equal "${EQUAL[@]}"
    bench "$name" ramp "${RAMP[@]}" --svg "$OUT/$name-ramp.svg"
    bench "$name" hold "${HOLD[@]}"
    bench "$name" alloc "${ALLOC[@]}"
    bench "$name" overload "${OVERLOAD[@]}"
done

# Unpaced flood: turnutils_uclient -Y packet -m 2 for 6 s; echoed packets per second from its
# per-second report, median of the full seconds.
flood() { # name
    local name=$1 peer_port
    peer_port=$(free_port)
    start_server "$name"
    taskset -c "$CLIENT_CPU" "$PEER_BIN" -L 127.0.0.1 -p "$peer_port" >/dev/null 2>&1 &
    local peer=$!
    sleep 0.3
    echo "== $name: unpaced flood"
    timeout 8 taskset -c "$CLIENT_CPU" "$UCLIENT" -Y packet -m 2 -W "$SECRET" -u flood \
        -p "$PORT" -e 127.0.0.1 -r "$peer_port" 127.0.0.1 2>&1 |
        sed -n 's/.*send_pps=\([0-9.]*\), recv_pps=\([0-9.]*\).*/\1 \2/p' >"$OUT/$name-flood.txt" || true
    kill "$peer" 2>/dev/null || true
    wait "$peer" 2>/dev/null || true
    stop_server
}
UCLIENT_HELP=$("$UCLIENT" 2>&1 || true)
if [[ "$UCLIENT_HELP" == *"-Y"* ]]; then
    for name in coturn ferroturn; do flood "$name"; done
else
    echo "== $UCLIENT has no -Y load generator: skipping the unpaced flood (set UCLIENT=...)"
    rm -f "$OUT"/coturn-flood.txt "$OUT"/ferroturn-flood.txt
fi

# Latency at half of coturn's saturation rate, 500 pps per participant.
HALF_PARTICIPANTS=$(python3 - "$OUT/coturn-ramp.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
pps = r["capacity"]["pps_each_way"] or 10000
print(max(1, round(pps / 2 / 500)))
PY
)
for name in coturn ferroturn; do
    bench "$name" half --profile custom --rate 500 --size 100 \
        --participants "$HALF_PARTICIPANTS" --duration "$MEASURE"
done
# The paced modes (poll-interval-ms and poll-coalesce-us, off by default) at the equal-rate load.
bench ferroturn-poll1ms equal "${EQUAL[@]}"
bench ferroturn-coalesce equal "${EQUAL[@]}"
fi

python3 - "$OUT" "${STREAM_ONLY:-}" "$ROUNDS" "$COALESCE_US" <<'PY' | tee "$OUT/summary.md"
import json, os, platform, statistics, sys
out = sys.argv[1]
stream_only = bool(sys.argv[2])
rounds = int(sys.argv[3])
coalesce_us = sys.argv[4]
def load(n, s):
    return json.load(open(os.path.join(out, f"{n}-{s}.json")))
def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"
rows = []
def row(label, c, f, better, fmt="{:.2f}"):
    ratio = f / c if c and f is not None and c is not None else None
    show = lambda v: v if isinstance(v, str) else (fmt.format(v) if v is not None else "n/a")
    rows.append((label, show(c), show(f), f"{ratio:.3g}" if ratio else "n/a", better))
notes = []
def win(n, s):
    w = load(n, s)["windows"][0]
    if (w["client_limited"] or w["loss_pct"] > 0) and not any(x.startswith(f"{n} {s}:") for x in notes):
        notes.append(f"{n} {s}: sent {w['achieved_pps_each_way']:.0f} of {w['target_pps_each_way']:.0f} pps, "
                     f"loss {w['loss_pct']:.2f} %, generator CPU {w['generator_cpu_pct']:.0f} %, "
                     f"longest loop stall {w['max_stall_ms']:.1f} ms"
                     + (" [client-limited]" if w["client_limited"] else ""))
    return w
def stream_runs(n, t):
    return [win(n, f"{t}-r{r}") for r in range(1, rounds + 1)]
def p50(w):
    return max(w["up"]["p50_ms"] or 0, w["down"]["p50_ms"] or 0)
def median_cpu(runs):
    return statistics.median(w["server"]["cpu_us_per_packet"] for w in runs)
def stream_rows():
    for t, label in (("tcp", "TURN/TCP"), ("tls", "TURNS (TLS)")):
        c = stream_runs("coturn", t)
        for n, how in (("ferroturn", ""), ("ferroturn-coalesce", f", ferroturn with poll-coalesce-us={coalesce_us}")):
            f = stream_runs(n, t)
            ratios = [a["server"]["cpu_us_per_packet"] / b["server"]["cpu_us_per_packet"] for a, b in zip(f, c)]
            row(f"{label}{how}: CPU µs per relayed packet, 50 connections × 200 pps × 170 B, median of "
                f"{rounds} alternating rounds (ratio per round {min(ratios):.2f}–{max(ratios):.2f}; "
                f"p50/p99 one-way {statistics.median(p50(w) for w in c):.2f}/{statistics.median(w['p99_ms'] for w in c):.2f} vs "
                f"{statistics.median(p50(w) for w in f):.2f}/{statistics.median(w['p99_ms'] for w in f):.2f} ms)",
                median_cpu(c), median_cpu(f), "lower")
            rows.append((f"{label}{how}: packets lost, worst round", f"{max(w['loss_pct'] for w in c):.2f} %",
                         f"{max(w['loss_pct'] for w in f):.2f} %", "", "lower"))
    hc, hf = load("coturn", "tls-conns")["handshake"], load("ferroturn", "tls-conns")["handshake"]
    row(f"TLS handshakes per second, 32 outstanding (each proven by a Binding; {hc['failed']}/{hf['failed']} failed)",
        hc["per_second"], hf["per_second"], "higher", "{:.0f}")
    row("Server CPU µs per TLS connection set up", hc["server_cpu_us_per_connection"],
        hf["server_cpu_us_per_connection"], "lower", "{:.0f}")
    row(f"RSS KiB per idle TLS connection ({hc['completed']}/{hf['completed']} held)",
        hc["kib_per_connection"], hf["kib_per_connection"], "lower")
def print_table(machine_extra=""):
    print(f"Machine: {os.cpu_count()} CPUs, {cpu_model()}, Linux {platform.release()}; "
          f"server on CPU 0 (one relay thread), load tool on CPU 1{machine_extra}")
    print()
    print("| figure | coturn | ferroturn | ferroturn / coturn | better |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
stream_rows()
if stream_only:
    print_table()
    for n in notes:
        print(f"note: {n}")
    sys.exit(0)
c, f = win("coturn", "equal"), win("ferroturn", "equal")
row(f"CPU µs per relayed packet at {c['achieved_pps_each_way']:.0f}/{f['achieved_pps_each_way']:.0f} pps each way",
    c["server"]["cpu_us_per_packet"], f["server"]["cpu_us_per_packet"], "lower")
sat = {}
for n in ("coturn", "ferroturn"):
    cap = load(n, "ramp")["capacity"]
    sat[n] = cap
def sat_text(cap):
    if cap["pps_each_way"] is None:
        return "none"
    t = f"{cap['pps_each_way']:.0f}"
    if cap.get("reached") is False:
        t = f"≥ {t} (not reached)"
    return t + (" (client-limited)" if cap["client_limited"] else "")
sc, sf = sat["coturn"]["pps_each_way"], sat["ferroturn"]["pps_each_way"]
rows.append(("Saturation, pps each way with < 1 % loss", sat_text(sat["coturn"]), sat_text(sat["ferroturn"]),
             f"{sf / sc:.3g}" if sc and sf else "n/a", "higher"))
hc, hf = win("coturn", "half"), win("ferroturn", "half")
row(f"p99 one-way latency, ms, at {hc['achieved_pps_each_way']:.0f} pps each way (half coturn's saturation)",
    hc["p99_ms"], hf["p99_ms"], "lower", "{:.3f}")
def flood(n):
    path = os.path.join(out, f"{n}-flood.txt")
    if not os.path.exists(path):
        return None
    recv = sorted(float(l.split()[1]) for l in open(path) if l.strip())[1:]  # first second is setup
    return recv[len(recv) // 2] if recv else None
fc, ff = flood("coturn"), flood("ferroturn")
if fc is not None or ff is not None:
    row("Echoed pps under an unpaced flood (turnutils_uclient -Y packet -m 2, median second of 6)",
        fc, ff, "higher", "{:.0f}")
def level(n, factor):
    o = load(n, "overload").get("overload") or {}
    for l in o.get("levels", []):
        if abs(l["factor"] - factor) < 1e-6:
            return l
    return None
for factor in (0.25, 0.5, 0.75):
    lc, lf = level("coturn", factor), level("ferroturn", factor)
    row(f"p99 one-way latency, ms, at {factor * 100:.0f} % of its own capacity (overload mode)",
        lc and lc["p99_ms"], lf and lf["p99_ms"], "lower", "{:.3f}")
for factor in (1.5, 2.0, 4.0):
    lc, lf = level("coturn", factor), level("ferroturn", factor)
    show = lambda l: None if l is None else f"{l['echoed_pps']:.0f} ({l['echoed_of_capacity'] * 100:.0f} %)" \
        + (" [client-limited]" if l["client_limited"] else "")
    ratio = (lf["echoed_pps"] / lc["echoed_pps"]) if lc and lf and lc["echoed_pps"] else None
    rows.append((f"Echoed pps offered {factor:g}x its own capacity (% of capacity)",
                 show(lc) or "n/a", show(lf) or "n/a", f"{ratio:.3g}" if ratio else "n/a", "higher"))
kc, kf = load("coturn", "hold")["hold"], load("ferroturn", "hold")["hold"]
row(f"RSS KiB per held allocation ({kc['held']}/{kf['held']} held)",
    kc["kib_per_allocation"], kf["kib_per_allocation"], "lower")
ac, af = load("coturn", "alloc")["alloc"], load("ferroturn", "alloc")["alloc"]
row("Allocations per second, 32 outstanding (401 + Allocate + Refresh 0)",
    ac["allocations_per_second"], af["allocations_per_second"], "higher", "{:.0f}")
steal = max(w.get("steal_pct", 0) for n in ("coturn", "ferroturn") for s in ("equal", "half")
            for w in load(n, s)["windows"])
print_table(f"; max steal in fixed runs {steal:.1f} %")
for n, how in (("ferroturn-poll1ms", "poll-interval-ms=1"), ("ferroturn-coalesce", f"poll-coalesce-us={coalesce_us}")):
    p = win(n, "equal")
    print(f"\nferroturn with {how} at {p['achieved_pps_each_way']:.0f} pps each way: "
          f"{p['server']['cpu_us_per_packet']:.2f} CPU µs per relayed packet "
          f"({p['server']['cpu_us_per_packet'] / c['server']['cpu_us_per_packet']:.3g} of coturn), "
          f"p50/p99 one-way {p50(p):.3f}/{p['p99_ms']:.3f} ms")
for n in ("coturn", "ferroturn"):
    r = load(n, "ramp")
    print(f"\n{n} ramp stopped: {r['capacity']['stop_reason']}")
    o = load(n, "overload").get("overload") or {}
    print(f"{n} overload-mode capacity: {o.get('capacity_pps_each_way') or 0:.0f} pps each way")
for n in notes:
    print(f"note: {n}")
PY
