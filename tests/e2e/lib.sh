# shellcheck shell=bash
# Shared helpers for the end-to-end scripts that drive real TURN clients.
#
# Source this file, then call e2e_init once. Every process started through
# e2e_start is killed when the sourcing script exits (trap on EXIT/INT/TERM).
#
# Only loopback addresses (127.0.0.1, ::1) are ever used. Every wait loop is
# bounded in count and in time.

# Seconds a single turnutils_uclient run may take before it is killed.
E2E_CLIENT_TIMEOUT=${E2E_CLIENT_TIMEOUT:-60}
# Seconds to wait for a freshly started server to answer a STUN Binding.
E2E_START_TIMEOUT=${E2E_START_TIMEOUT:-10}

E2E_DIR=""
E2E_PIDS=()      # "name:pid" of background processes we started
E2E_NAMES=()     # scenario names, in order
E2E_STATUS=()    # PASS / FAIL per scenario
E2E_DETAIL=()    # one-line numbers / reason per scenario
E2E_PASSED=0
E2E_FAILED=0

e2e_log() { printf '[e2e] %s\n' "$*" >&2; }
e2e_die() {
    printf '[e2e] FATAL: %s\n' "$*" >&2
    exit 2
}

# Creates the temp dir for configs, pid files and logs; installs the cleanup trap.
e2e_init() {
    local tool
    for tool in python3 timeout turnutils_uclient turnutils_peer; do
        command -v "$tool" >/dev/null 2>&1 || e2e_die "required tool '$tool' not found (install Debian's coturn package / python3)"
    done
    E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferroturn-e2e.XXXXXX")
    trap e2e_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    e2e_log "work dir: $E2E_DIR"
}

# Stops every process we started (SIGTERM, bounded wait, then SIGKILL).
# Keeps the work dir when a scenario failed or E2E_KEEP=1, so logs can be read.
e2e_cleanup() {
    local rc=$?
    local entry
    for entry in "${E2E_PIDS[@]+"${E2E_PIDS[@]}"}"; do
        e2e_kill_pid "${entry#*:}"
    done
    E2E_PIDS=()
    if [[ -n "$E2E_DIR" && -d "$E2E_DIR" ]]; then
        if [[ "${E2E_KEEP:-0}" == 1 || $E2E_FAILED -gt 0 || $rc -ne 0 ]]; then
            e2e_log "logs kept in $E2E_DIR"
        else
            rm -rf "$E2E_DIR"
        fi
    fi
    return $rc
}

# e2e_kill_pid PID: TERM, wait up to 5 s, then KILL. Only ever targets a pid we started.
e2e_kill_pid() {
    local pid=$1 i
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# e2e_free_ports COUNT [AVOID]: prints the first port of COUNT consecutive ports that are
# free for UDP and TCP on both 127.0.0.1 and ::1 at the time of the check, and (AVOID: a
# comma-separated list) contain none of the ports already picked but not bound yet, so a
# relay range never holds the server's own listening port (ferroturn refuses that).
# The block is taken below the kernel's ephemeral range so that the clients'
# own OS-chosen ports cannot collide with it later. Bounded: 200 attempts.
e2e_free_ports() {
    python3 - "$1" "${2:-}" <<'PY'
import random, socket, sys
count = int(sys.argv[1])
avoid = {int(p) for p in sys.argv[2].split(",") if p.strip()}
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph_lo, _ = (int(x) for x in f.read().split())
except OSError:
    eph_lo = 32768
lo, hi = 10000, max(10000 + count + 1, eph_lo - count - 1)

def free(port):
    for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(fam, typ)
            try:
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, port))
            except OSError:
                return False
            finally:
                s.close()
    return True

rng = random.SystemRandom()
for _ in range(200):
    base = rng.randrange(lo, hi)
    if not avoid & set(range(base, base + count)) and all(free(p) for p in range(base, base + count)):
        print(base)
        sys.exit(0)
sys.exit("no block of %d free loopback ports found" % count)
PY
}

# e2e_random_hex BYTES
e2e_random_hex() {
    python3 -c 'import secrets,sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"
}

# e2e_start NAME CMD [ARGS...]: runs CMD in the background, stdout+stderr to
# $E2E_DIR/NAME.log, pid to $E2E_DIR/NAME.pid.
e2e_start() {
    local name=$1
    shift
    "$@" >"$E2E_DIR/$name.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$E2E_DIR/$name.pid"
    E2E_PIDS+=("$name:$pid")
    e2e_log "started $name (pid $pid): $*"
}

# e2e_stop NAME: stops a process started with e2e_start.
e2e_stop() {
    local name=$1 pid
    pid=$(cat "$E2E_DIR/$name.pid" 2>/dev/null || true)
    e2e_kill_pid "$pid"
    local kept=() entry
    for entry in "${E2E_PIDS[@]+"${E2E_PIDS[@]}"}"; do
        [[ "${entry%%:*}" == "$name" ]] || kept+=("$entry")
    done
    E2E_PIDS=("${kept[@]+"${kept[@]}"}")
}

# e2e_alive NAME: true while the process is running.
e2e_alive() {
    local pid
    pid=$(cat "$E2E_DIR/$1.pid" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# e2e_stun_probe ADDR PORT: sends one STUN Binding request over UDP and
# succeeds when a Binding success response with the same transaction id and
# an (XOR-)MAPPED-ADDRESS arrives within 1 s.
e2e_stun_probe() {
    python3 - "$1" "$2" <<'PY'
import os, socket, struct, sys
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
tid = os.urandom(12)
req = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(1.0)
try:
    s.sendto(req, (addr, port))
    data, _ = s.recvfrom(2048)
except OSError:
    sys.exit(1)
if len(data) < 20:
    sys.exit(1)
mtype, mlen, cookie = struct.unpack("!HHI", data[:8])
if mtype != 0x0101 or cookie != 0x2112A442 or data[8:20] != tid:
    sys.exit(1)
pos, end = 20, min(len(data), 20 + mlen)
while pos + 4 <= end:
    atype, alen = struct.unpack("!HH", data[pos:pos + 4])
    if atype in (0x0001, 0x0020):
        sys.exit(0)
    pos += 4 + ((alen + 3) & ~3)
sys.exit(1)
PY
}

# e2e_wait_stun NAME ADDR PORT: waits (at most E2E_START_TIMEOUT s) until the
# server started as NAME answers a STUN Binding on ADDR:PORT.
e2e_wait_stun() {
    local name=$1 addr=$2 port=$3 i tries
    tries=$((E2E_START_TIMEOUT * 4))
    for ((i = 0; i < tries; i++)); do
        if ! e2e_alive "$name"; then
            e2e_log "$name exited before answering; last log lines:"
            tail -n 30 "$E2E_DIR/$name.log" >&2 || true
            return 1
        fi
        if e2e_stun_probe "$addr" "$port"; then
            e2e_log "$name answers STUN on [$addr]:$port"
            return 0
        fi
        sleep 0.25
    done
    e2e_log "$name did not answer STUN on [$addr]:$port within ${E2E_START_TIMEOUT}s; last log lines:"
    tail -n 30 "$E2E_DIR/$name.log" >&2 || true
    return 1
}

# e2e_wait_udp_bound ADDR PORT: waits (max 5 s) until something is bound to
# UDP ADDR:PORT (used for turnutils_peer, which only echoes).
e2e_wait_udp_bound() {
    local addr=$1 port=$2 i
    for ((i = 0; i < 50; i++)); do
        if ! python3 - "$addr" "$port" <<'PY'; then return 0; fi
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind((addr, port))
except OSError:
    sys.exit(1)   # in use: the peer is up
s.close()
PY
        sleep 0.1
    done
    return 1
}

# e2e_record NAME PASS|FAIL DETAIL
e2e_record() {
    E2E_NAMES+=("$1")
    E2E_STATUS+=("$2")
    E2E_DETAIL+=("$3")
    if [[ "$2" == PASS ]]; then
        E2E_PASSED=$((E2E_PASSED + 1))
    else
        E2E_FAILED=$((E2E_FAILED + 1))
    fi
    printf '%s %s: %s\n' "$2" "$1" "$3"
}

# e2e_parse_uclient LOGFILE: prints "msgs_sent msgs_recv bytes_sent bytes_recv lost dropped time"
# from the final summary of a turnutils_uclient run; fails when a part of the
# summary is missing. The summary lines (coturn 4.6) are:
#   N: : start_mclient: tot_send_msgs=400, tot_recv_msgs=400
#   N: : start_mclient: tot_send_bytes ~ 68000, tot_recv_bytes ~ 68000
#   N: : Total transmit time is 8
#   N: : Total lost packets 0 (0.000000%), total send dropped 0 (0.000000%)
# Progress lines carry "msz=" and are skipped.
e2e_parse_uclient() {
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
final = [l for l in text.splitlines() if "msz=" not in l]
def last(pattern):
    found = None
    for line in final:
        m = re.search(pattern, line)
        if m:
            found = m
    return found
msgs = last(r"tot_send_msgs=(\d+),\s*tot_recv_msgs=(\d+)")
byts = last(r"tot_send_bytes\s*~\s*(\d+),\s*tot_recv_bytes\s*~\s*(\d+)")
lost = last(r"Total lost packets\s+(\d+)\s*\([^)]*\)(?:,\s*total send dropped\s+(\d+))?")
ttime = last(r"Total transmit time is\s+(\d+)")
missing = [n for n, v in (("tot_send_msgs/tot_recv_msgs", msgs), ("tot_send_bytes/tot_recv_bytes", byts),
                          ("Total lost packets", lost), ("Total transmit time", ttime)) if v is None]
if missing:
    print("summary missing: " + ", ".join(missing))
    sys.exit(1)
print(msgs.group(1), msgs.group(2), byts.group(1), byts.group(2), lost.group(1),
      lost.group(2) or 0, ttime.group(1))
PY
}

# E2E_SERVER (optional): name of the server process (as given to e2e_start);
# a scenario fails when that process is gone after the client run.
E2E_SERVER=${E2E_SERVER:-}

# e2e_uclient NAME [UCLIENT ARGS...]: one scenario. Passes only when uclient
# exits 0 and its summary shows sent bytes == received bytes > 0,
# sent msgs == received msgs > 0 and 0 lost packets.
e2e_uclient() {
    local name=$1
    shift
    local log="$E2E_DIR/uclient-$name.log" rc=0 parsed
    e2e_log "run $name: turnutils_uclient $*"
    timeout -k 5 "$E2E_CLIENT_TIMEOUT" turnutils_uclient "$@" >"$log" 2>&1 </dev/null || rc=$?
    if ! parsed=$(e2e_parse_uclient "$log"); then
        e2e_record "$name" FAIL "exit=$rc, $parsed (log: $log)"
        tail -n 15 "$log" | sed 's/^/    | /' >&2
        return 1
    fi
    local ms mr bs br lost dropped ttime
    read -r ms mr bs br lost dropped ttime <<<"$parsed"
    local nums="sent=${bs}B/${ms}msg recv=${br}B/${mr}msg lost=$lost dropped=$dropped time=${ttime}s exit=$rc"
    local why=""
    ((rc == 0)) || why+=" uclient exit $rc;"
    ((rc != 124 && rc != 137)) || why+=" timed out after ${E2E_CLIENT_TIMEOUT}s;"
    ((bs > 0)) || why+=" nothing sent;"
    ((bs == br)) || why+=" bytes differ;"
    ((ms == mr)) || why+=" msgs differ;"
    ((lost == 0)) || why+=" packets lost;"
    if [[ -n "${E2E_SERVER:-}" ]] && ! e2e_alive "$E2E_SERVER"; then
        why+=" server $E2E_SERVER died;"
    fi
    if [[ -n "$why" ]]; then
        e2e_record "$name" FAIL "$nums --${why%;} (log: $log)"
        tail -n 15 "$log" | sed 's/^/    | /' >&2
        return 1
    fi
    e2e_record "$name" PASS "$nums"
}

# e2e_uclient_must_fail NAME [UCLIENT ARGS...]: negative scenario. Passes when
# uclient exits non-zero or relays no data at all.
e2e_uclient_must_fail() {
    local name=$1
    shift
    local log="$E2E_DIR/uclient-$name.log" rc=0 parsed br=0
    e2e_log "run $name (must fail): turnutils_uclient $*"
    timeout -k 5 "$E2E_CLIENT_TIMEOUT" turnutils_uclient "$@" >"$log" 2>&1 </dev/null || rc=$?
    if parsed=$(e2e_parse_uclient "$log"); then
        br=$(awk '{print $4}' <<<"$parsed")
    fi
    local reason
    reason=$(grep -m1 -oE 'ERROR: .*' "$log" || true)
    if ((rc == 124 || rc == 137)); then
        e2e_record "$name" FAIL "uclient hung until the ${E2E_CLIENT_TIMEOUT}s timeout instead of being refused (log: $log)"
        return 1
    fi
    if [[ -n "${E2E_SERVER:-}" ]] && ! e2e_alive "$E2E_SERVER"; then
        e2e_record "$name" FAIL "server $E2E_SERVER died (log: $E2E_DIR/$E2E_SERVER.log)"
        return 1
    fi
    if ((rc != 0 || br == 0)); then
        e2e_record "$name" PASS "rejected as expected: exit=$rc recv=${br}B ${reason:+($reason)}"
    else
        e2e_record "$name" FAIL "expected failure but uclient exited 0 and received ${br}B (log: $log)"
        return 1
    fi
}

# e2e_summary TITLE: prints the table and "N passed, N failed"; when
# E2E_RESULT_FILE is set, also writes "PASSED FAILED" there. Returns 1 on failures.
e2e_summary() {
    local i
    printf '\n== %s ==\n' "$1"
    printf '%-32s %-6s %s\n' SCENARIO RESULT DETAIL
    for ((i = 0; i < ${#E2E_NAMES[@]}; i++)); do
        printf '%-32s %-6s %s\n' "${E2E_NAMES[$i]}" "${E2E_STATUS[$i]}" "${E2E_DETAIL[$i]}"
    done
    printf '%d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
    if [[ -n "${E2E_RESULT_FILE:-}" ]]; then
        printf '%d %d\n' "$E2E_PASSED" "$E2E_FAILED" >"$E2E_RESULT_FILE"
    fi
    ((E2E_FAILED == 0))
}

# chromium_path: prints the Chromium binary to drive, or fails when none is installed. The real
# binary, not Debian's /usr/bin/chromium wrapper, which adds its own flags (extensions, API
# keys) from /etc/chromium.d.
chromium_path() {
    local c
    for c in /usr/lib/chromium/chromium "$(command -v chromium 2>/dev/null || true)"; do
        [[ -n "$c" && -x "$c" ]] && {
            echo "$c"
            return 0
        }
    done
    return 1
}
