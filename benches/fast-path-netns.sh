#!/usr/bin/env bash
# Server-core busy time per relayed packet for coturn, ferroturn in user space and ferroturn
# with the kernel fast path, at the same offered load. Run by hand as root (not part of the
# test suite):
#
#     bash benches/fast-path-netns.sh                    # 20k pps each way, 3 rounds
#     TURNSERVER=/path/to/coturn/bin/turnserver bash benches/fast-path-netns.sh
#     ROUNDS=1 DURATION=5 bash benches/fast-path-netns.sh
#     RAMP=1 bash benches/fast-path-netns.sh              # also each server's saturation
#
# Why namespaces: the fast path forwards in softirq context, charged to whichever CPU receives
# the packet, never to the server process; on loopback that is the sender's CPU. Here the load
# generator (`ferroturn bench`: clients and peers) and the server run in two namespaces joined
# by one veth pair; RPS steers the server side's receive processing to SERVER_CPU and the
# generator side's to GEN_CPU; the server is pinned to SERVER_CPU, the generator to GEN_CPU;
# `ferroturn bench --server-core SERVER_CPU` reports that core's busy time (user + nice +
# system + irq + softirq from /proc/stat) per relayed packet. Other processes on SERVER_CPU
# count too: on a shared machine, take back-to-back rounds and read ranges; the "own" column
# (the server process's CPU plus that core's irq + softirq time) leaves other processes out.
#
# The namespaces have no link to the host's and no default route; their names carry this
# shell's pid and are removed on exit. Results: benches/results/fast-path-*.json and a table
# in benches/results/fast-path-summary.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/benches/results"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET_DIR/release/ferroturn}
TURNSERVER=${TURNSERVER:-turnserver}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PARTICIPANTS=${PARTICIPANTS:-100}
RATE=${RATE:-200}
SERVERS=${SERVERS:-coturn ferroturn-user ferroturn-fast}
[[ $(id -u) -eq 0 ]] || { echo "needs root (namespaces, RPS, eBPF)" >&2; exit 2; }
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/ferroturn-fastpath.XXXXXX)
PFX="ftbn$$"
NS_GEN=$PFX-gen
NS_SRV=$PFX-srv
SRV_IP=198.51.100.1
GEN_IP=198.51.100.2
SECRET="fastpath-bench-$(date +%s)"
SERVER_PID=""

cleanup() {
    set +e
    if [[ -n "$SERVER_PID" ]]; then kill -INT "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
    ip netns del "$NS_GEN" 2>/dev/null
    ip netns del "$NS_SRV" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

[[ -x "$BIN" ]] || (cd "$ROOT" && cargo build --release --quiet)
command -v "$TURNSERVER" >/dev/null || { echo "no $TURNSERVER: set TURNSERVER or install coturn" >&2; exit 2; }

ip netns add "$NS_GEN"
ip netns add "$NS_SRV"
ip -n "$NS_GEN" link set lo up
ip -n "$NS_SRV" link set lo up
ip -n "$NS_GEN" link add veth0 type veth peer name veth0 netns "$NS_SRV"
ip -n "$NS_GEN" addr add "$GEN_IP/24" dev veth0
ip -n "$NS_SRV" addr add "$SRV_IP/24" dev veth0
ip -n "$NS_GEN" link set veth0 up
ip -n "$NS_SRV" link set veth0 up
mask() { printf '%x' $((1 << $1)); }
ip netns exec "$NS_SRV" sh -c "echo $(mask "$SERVER_CPU") > /sys/class/net/veth0/queues/rx-0/rps_cpus"
ip netns exec "$NS_GEN" sh -c "echo $(mask "$GEN_CPU") > /sys/class/net/veth0/queues/rx-0/rps_cpus"

cat >"$WORK/turnserver.conf" <<CONF
listening-ip=$SRV_IP
relay-ip=$SRV_IP
listening-port=3478
min-port=10000
max-port=29999
allowed-peer-ip=$GEN_IP
use-auth-secret
static-auth-secret=$SECRET
realm=bench.local
relay-threads=1
no-cli
no-tls
no-dtls
no-tcp-relay
no-stdout-log
simple-log
log-file=$WORK/server.log
CONF

start_server() { # name
    case "$1" in
        coturn) ip netns exec "$NS_SRV" taskset -c "$SERVER_CPU" "$TURNSERVER" -c "$WORK/turnserver.conf" >/dev/null 2>&1 & ;;
        ferroturn-user) ip netns exec "$NS_SRV" taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/turnserver.conf" \
            --kernel-fast-path off >"$WORK/$1.out" 2>&1 & ;;
        ferroturn-fast) ip netns exec "$NS_SRV" taskset -c "$SERVER_CPU" "$BIN" -c "$WORK/turnserver.conf" \
            --kernel-fast-path on >"$WORK/$1.out" 2>&1 & ;;
    esac
    SERVER_PID=$!
    sleep 1.5
    kill -0 "$SERVER_PID" || { echo "$1 did not start:"; tail -5 "$WORK/$1.out" 2>/dev/null; exit 1; }
}

stop_server() {
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    sleep 0.5
}

# idle_baseline FILE: the server core's busy and irq+softirq share over DURATION seconds with
# no server and no load, i.e. what the other processes on the machine put on it just then.
idle_baseline() {
    python3 - "$SERVER_CPU" "$DURATION" "$1" <<'PY'
import json, os, sys, time
cpu, secs, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
def read():
    for line in open("/proc/stat"):
        f = line.split()
        if f[0] == "cpu" + cpu:
            n = [int(x) for x in f[1:]]
            return time.monotonic(), n[0] + n[1] + n[2] + n[5] + n[6], n[5] + n[6]
t0, b0, s0 = read()
time.sleep(secs)
t1, b1, s1 = read()
hz = os.sysconf("SC_CLK_TCK")
json.dump({"busy_share": (b1 - b0) / hz / (t1 - t0), "irq_share": (s1 - s0) / hz / (t1 - t0)}, open(out, "w"))
PY
}

for round in $(seq 1 "$ROUNDS"); do
    for name in $SERVERS; do
        idle_baseline "$OUT/fast-path-$name-$round.idle.json"
        start_server "$name"
        echo "== round $round: $name"
        ip netns exec "$NS_GEN" taskset -c "$GEN_CPU" "$BIN" bench --server "$SRV_IP:3478" \
            --allow-non-loopback --secret "$SECRET" --server-pid "$SERVER_PID" \
            --server-core "$SERVER_CPU" --profile custom --rate "$RATE" --size 100 \
            --participants "$PARTICIPANTS" --duration "$DURATION" \
            --json "$OUT/fast-path-$name-$round.json" | cut -c1-600
        stop_server
    done
done

# Saturation (RAMP=1): add 20 participants x 500 pps (10k pps each way) per 3 s step until loss
# > 1 % or p99 > 1 s, at most 200 participants (100k pps each way) and 90 s per server.
if [[ -n "${RAMP:-}" ]]; then
    for name in $SERVERS; do
        start_server "$name"
        echo "== ramp: $name"
        ip netns exec "$NS_GEN" taskset -c "$GEN_CPU" "$BIN" bench --mode ramp \
            --server "$SRV_IP:3478" --allow-non-loopback --secret "$SECRET" \
            --server-pid "$SERVER_PID" --server-core "$SERVER_CPU" --profile custom --rate 500 \
            --size 100 --start 20 --step 20 --max-participants 200 --step-duration 3 \
            --max-p99-ms 1000 --time-limit 90 --json "$OUT/fast-path-$name-ramp.json" | tail -n 3 | cut -c1-300
        stop_server
    done
fi

python3 - "$OUT" "$ROUNDS" "$SERVERS" <<'PY' | tee "$OUT/fast-path-summary.md"
import json, os, sys
out, rounds, servers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def windows(name):
    for r in range(1, rounds + 1):
        w = json.load(open(os.path.join(out, f"fast-path-{name}-{r}.json")))["windows"][0]
        w["idle"] = json.load(open(os.path.join(out, f"fast-path-{name}-{r}.idle.json")))
        yield w
def net(w, key, share):
    """Per-packet figure minus what the idle core carried in the same time just before."""
    sc = w.get("server_core")
    if not sc:
        return None
    packets = w["relayed_pps"] * w["seconds"]
    return sc[key] - w["idle"][share] * w["seconds"] * 1e6 / packets
def rng(vals, fmt="{:.2f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    lo, hi = min(vals), max(vals)
    return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}–{fmt.format(hi)}"
stats = {}
for name in servers:
    ws = list(windows(name))
    core = [w["server_core"]["busy_us_per_packet"] if w.get("server_core") else None for w in ws]
    own = [w["server_core"]["own_us_per_packet"] if w.get("server_core") else None for w in ws]
    netbusy = [net(w, "busy_us_per_packet", "busy_share") for w in ws]
    proc = [w["server"]["cpu_us_per_packet"] if w.get("server") else None for w in ws]
    stats[name] = dict(
        core=core, own=own, net=netbusy, proc=proc,
        busy=[w["server_core"]["busy_pct"] if w.get("server_core") else None for w in ws],
        p50=[max(w["up"]["p50_ms"], w["down"]["p50_ms"]) for w in ws],
        p99=[w["p99_ms"] for w in ws], loss=[w["loss_pct"] for w in ws],
        pps=[w["achieved_pps_each_way"] for w in ws],
        limited=any(w["client_limited"] for w in ws),
        gen=[w["generator_cpu_pct"] for w in ws], steal=[w["steal_pct"] for w in ws])
print(f"Server core busy time per relayed packet, {len(servers)} servers x {rounds} rounds, "
      "veth between two namespaces, RPS-steered; ranges over rounds (shared, noisy machine)\n")
print("| server | core busy µs/packet | same, minus the idle core's busy share | own µs/packet (process + core softirq) | server process µs/packet | core busy % | pps each way | loss % | p50 ms | p99 ms | generator CPU % | steal % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for name in servers:
    s = stats[name]
    flag = " (generator-bound)" if s["limited"] else ""
    print(f"| {name}{flag} | {rng(s['core'])} | {rng(s['net'])} | {rng(s['own'])} | {rng(s['proc'])} | {rng(s['busy'], '{:.0f}')} | "
          f"{rng(s['pps'], '{:.0f}')} | {rng(s['loss'], '{:.3f}')} | {rng(s['p50'], '{:.3f}')} | "
          f"{rng(s['p99'], '{:.3f}')} | {rng(s['gen'], '{:.0f}')} | {rng(s['steal'], '{:.1f}')} |")
ramps = []
for name in servers:
    path = os.path.join(out, f"fast-path-{name}-ramp.json")
    if os.environ.get("RAMP") and os.path.exists(path):
        c = json.load(open(path))["capacity"]
        pps = c.get("pps_each_way")
        where = f"{pps:.0f} pps each way" if pps else "below the first step"
        how = "reached" if c.get("reached") else "not reached (≥)"
        flag = ", generator-bound" if c.get("client_limited") else ""
        ramps.append(f"- {name}: {how} {where}, stop: {c.get('stop_reason')}{flag}")
if ramps:
    print("\nSaturation (ramp of 10k pps each way per step, loss > 1 % or p99 > 1 s ends it):")
    print("\n".join(ramps))
if "coturn" in stats and "ferroturn-fast" in stats:
    for what in ("core", "net", "own"):
        pairs = [(f, c) for f, c in zip(stats["ferroturn-fast"][what], stats["coturn"][what]) if f and c]
        if pairs:
            ratios = [f / c for f, c in pairs]
            print(f"\nfast path / coturn ({what} µs/packet), per round: "
                  f"{', '.join(f'{r:.3f}' for r in ratios)} (target <= 0.25)")
PY
