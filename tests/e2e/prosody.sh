#!/usr/bin/env bash
# End-to-end proof of the Jitsi credential path: files from `ferroturn jitsi init`,
# a real Prosody (Debian's 0.12, mod_external_services) handing out TURN
# credentials over XMPP exactly as lib-jitsi-meet asks for them, and coturn's
# turnutils_uclient relaying through ferroturn with those credentials.
#
#   tests/e2e/prosody.sh FERROTURN_BIN
#
# Scenarios: generated files agree (check); Prosody's credentials allocate and
# relay (sent == received bytes, 0 lost); after `init --rotate` old and new
# Prosody credentials both work; after retiring the old secret the old ones get
# 401 and the new ones still work; the fragment moved behind Include with its
# secret joined by `..` agrees (check) and relays; a Prosody with a wrong secret
# gets 401.
# Installs prosody and coturn (apt) when missing and never leaves a system
# Prosody running. Everything listens on 127.0.0.1; every wait is bounded.
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

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Stops a Prosody that a package install started (policy-rc.d usually prevents it).
stop_system_prosody() {
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prosody 2>/dev/null; then
        e2e_log "the prosody package started a daemon; stopping it"
        as_root systemctl stop prosody || true
    fi
    if [[ -x /etc/init.d/prosody ]] && /etc/init.d/prosody status >/dev/null 2>&1; then
        e2e_log "the prosody package started a daemon; stopping it"
        as_root /etc/init.d/prosody stop || true
    fi
}

install_missing() {
    local need=()
    command -v prosody >/dev/null 2>&1 || need+=(prosody)
    command -v turnutils_uclient >/dev/null 2>&1 || need+=(coturn)
    ((${#need[@]} == 0)) && return 0
    e2e_log "installing ${need[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    stop_system_prosody
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet coturn 2>/dev/null; then
        as_root systemctl stop coturn || true
    fi
}
install_missing
command -v prosodyctl >/dev/null 2>&1 || e2e_die "prosodyctl missing after install"

e2e_init
DOMAIN=meet.test
XMPP_USER=alice
XMPP_PASS=$(e2e_random_hex 8)
GEN=$E2E_DIR/gen
TURN_PORT=$(e2e_free_ports 1)
RELAY_BASE=$(e2e_free_ports 100 "$TURN_PORT")
PEER_PORT=$(e2e_free_ports 2)

# Prosody refuses to keep root: as root it switches to prosody_user. Run it as
# the package's `prosody` user from the start (setpriv execs, so the pid we
# track is Prosody's own), with files that user can read and write.
RUN_AS=()
if [[ $(id -u) -eq 0 ]]; then
    id prosody >/dev/null 2>&1 || e2e_die "no 'prosody' user (the Debian package creates it)"
    RUN_AS=(setpriv --reuid=prosody --regid=prosody --init-groups --)
fi

# write_prosody NAME LUA_FRAGMENT [include]: a throwaway Prosody config in $E2E_DIR/NAME/.
# With `include`, the VirtualHost and the fragment go to conf.d/DOMAIN.cfg.lua, which the
# main file pulls in with Include "conf.d/*.cfg.lua" (Debian's Jitsi layout).
write_prosody() {
    local name=$1 fragment=$2 layout=${3:-} dir=$E2E_DIR/$1
    XMPP_PORT=$(e2e_free_ports 1)
    mkdir -p "$dir/data"
    cat >"$dir/prosody.cfg.lua" <<LUA
-- Throwaway Prosody for tests/e2e/prosody.sh: loopback only, no s2s, no HTTP.
daemonize = false
pidfile = "$dir/prosody.pid"
data_dir = "$dir/data"
log = { { levels = { min = "info" }, to = "console" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $XMPP_PORT }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "external_services" }
modules_disabled = { "s2s"; "tls"; "http"; "admin_shell" }
LUA
    if [[ "$layout" == include ]]; then
        mkdir -p "$dir/conf.d"
        echo 'Include "conf.d/*.cfg.lua"' >>"$dir/prosody.cfg.lua"
        { echo "VirtualHost \"$DOMAIN\""; echo 'local turn_host = "127.0" .. ".0.1"'; } >"$dir/conf.d/$DOMAIN.cfg.lua"
        cat "$fragment" >>"$dir/conf.d/$DOMAIN.cfg.lua"
    else
        echo "VirtualHost \"$DOMAIN\"" >>"$dir/prosody.cfg.lua"
        # The fragment exactly as init wrote it.
        cat "$fragment" >>"$dir/prosody.cfg.lua"
    fi
    if [[ ${#RUN_AS[@]} -gt 0 ]]; then
        chown -R prosody:prosody "$dir"
        chmod 755 "$E2E_DIR"
    fi
    timeout 20 "${RUN_AS[@]}" prosodyctl --config "$dir/prosody.cfg.lua" register "$XMPP_USER" "$DOMAIN" "$XMPP_PASS" \
        >"$dir/register.log" 2>&1 || {
        cat "$dir/register.log" >&2
        e2e_die "prosodyctl register failed"
    }
    e2e_start "$name" "${RUN_AS[@]}" prosody --config "$dir/prosody.cfg.lua"
    local i
    for ((i = 0; i < 50; i++)); do
        e2e_alive "$name" || break
        if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()' "$XMPP_PORT" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    tail -n 30 "$E2E_DIR/$name.log" >&2
    e2e_die "prosody ($name) did not listen on 127.0.0.1:$XMPP_PORT"
}

# fetch_turn NAME: asks the running Prosody for its services as lib-jitsi-meet
# does; sets TURN_USER / TURN_PASS from the turn/udp entry, SERVICES to all.
fetch_turn() {
    local out="$E2E_DIR/services-$1.json"
    timeout 20 python3 "$HERE/xmpp_extdisco.py" 127.0.0.1 "$XMPP_PORT" "$DOMAIN" "$XMPP_USER" "$XMPP_PASS" >"$out" || return 1
    SERVICES=$(cat "$out")
    read -r TURN_USER TURN_PASS < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    s = json.loads(line)
    if s.get("type") == "turn" and s.get("transport", "udp") == "udp":
        print(s["username"], s["password"])
        break
' "$out") || return 1
    [[ -n "${TURN_USER:-}" && -n "${TURN_PASS:-}" ]]
}

start_relay() {
    e2e_start turn "$BIN" -c "$GEN/turnserver.conf"
    E2E_SERVER=turn
    e2e_wait_stun turn 127.0.0.1 "$TURN_PORT" || e2e_die "ferroturn did not come up"
}

UC=(-p "$TURN_PORT" -n 50 -m 2 -l 170 -e 127.0.0.1 -r "$PEER_PORT")

# relay_ok NAME USER PASS: Prosody's credentials allocate and relay data.
relay_ok() { e2e_uclient "$1" "${UC[@]}" -u "$2" -w "$3" 127.0.0.1 || true; }

# relay_401 NAME USER PASS: uclient is refused, and a bare Allocate with the same
# credentials is answered 401 (not some other error).
relay_401() {
    local name=$1 answer
    e2e_uclient_must_fail "$name" -p "$TURN_PORT" -n 5 -m 1 -e 127.0.0.1 -r "$PEER_PORT" -u "$2" -w "$3" 127.0.0.1 || true
    answer=$(timeout 10 python3 "$HERE/turn_allocate.py" 127.0.0.1 "$TURN_PORT" "$2" "$3" 2>&1 || true)
    if [[ "$answer" == "error 401"* ]]; then
        e2e_record "$name-401" PASS "authenticated Allocate answered: $answer"
    else
        e2e_record "$name-401" FAIL "expected error 401, got: $answer"
    fi
}

# --- Generated files ---------------------------------------------------------
INIT=("$BIN" jitsi init --host 127.0.0.1 --listen-ip 127.0.0.1 --relay-ip 127.0.0.1
    --port "$TURN_PORT" --transports udp --relay-ports "$RELAY_BASE-$((RELAY_BASE + 99))"
    --realm "$DOMAIN" --out "$GEN")
"${INIT[@]}" >"$E2E_DIR/init.log" 2>&1 || {
    cat "$E2E_DIR/init.log" >&2
    e2e_die "ferroturn jitsi init failed"
}
# Test only: the peer is turnutils_peer on loopback, which ferroturn denies by default.
echo "allow-loopback-peers" >>"$GEN/turnserver.conf"
# Test only: Debian's turnutils_uclient (4.6) binds channels up to 0x7FFF (RFC 5766's range).
echo "rfc5766-channel-numbers" >>"$GEN/turnserver.conf"

# UDP only on purpose (turnutils_uclient relays over UDP here), so the warning is waived.
if "$BIN" jitsi check --allow-udp-only --conf "$GEN/turnserver.conf" "$GEN/prosody-turn.cfg.lua" "$GEN/jitsi-turn.env" \
    "$GEN/jitsi-turn-secret.yaml" >"$E2E_DIR/check.log" 2>&1; then
    e2e_record check-generated PASS "$(grep -c '^OK:' "$E2E_DIR/check.log") files agree with turnserver.conf"
else
    e2e_record check-generated FAIL "$(tr '\n' ' ' <"$E2E_DIR/check.log")"
fi

e2e_start peer turnutils_peer -L 127.0.0.1 -p "$PEER_PORT"
e2e_wait_udp_bound 127.0.0.1 "$PEER_PORT" || e2e_die "turnutils_peer did not bind"
start_relay

# --- Prosody with the generated fragment ---------------------------------------
write_prosody prosody1 "$GEN/prosody-turn.cfg.lua"
SECRET1=$(sed -n 's/^external_service_secret = "\(.*\)";$/\1/p' "$GEN/prosody-turn.cfg.lua")
if fetch_turn prosody1; then
    expected=$(python3 -c 'import base64,hashlib,hmac,sys; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha1).digest()).decode())' "$SECRET1" "$TURN_USER")
    if [[ "$expected" == "$TURN_PASS" ]] && grep -q '"type": "stun"' <<<"$SERVICES"; then
        e2e_record prosody-extdisco PASS "username=$TURN_USER, $(wc -l <<<"$SERVICES") services, password = base64(HMAC-SHA1(secret, username))"
    else
        e2e_record prosody-extdisco FAIL "unexpected services/password: $SERVICES"
    fi
else
    e2e_record prosody-extdisco FAIL "services query failed (see $E2E_DIR)"
    TURN_USER=none TURN_PASS=none
fi
OLD_USER=$TURN_USER OLD_PASS=$TURN_PASS
relay_ok prosody-credentials-relay "$OLD_USER" "$OLD_PASS"

# --- Rotation: both secrets valid ---------------------------------------------
"${INIT[@]}" --rotate >"$E2E_DIR/rotate.log" 2>&1 || {
    cat "$E2E_DIR/rotate.log" >&2
    e2e_die "init --rotate failed"
}
e2e_stop turn
start_relay
relay_ok rotated-old-credentials "$OLD_USER" "$OLD_PASS"
e2e_stop prosody1
write_prosody prosody2 "$GEN/prosody-turn.cfg.lua"
if fetch_turn prosody2 && [[ "$TURN_PASS" != "$OLD_PASS" || "$TURN_USER" != "$OLD_USER" ]]; then
    relay_ok rotated-new-credentials "$TURN_USER" "$TURN_PASS"
else
    e2e_record rotated-new-credentials FAIL "no new credentials from the rotated Prosody"
fi
NEW_USER=$TURN_USER NEW_PASS=$TURN_PASS

# --- Retire the old secret with the command init printed ---------------------------
RETIRE=$(grep -m1 "sed -i '/^static-auth-secret=" "$E2E_DIR/rotate.log" | sed 's/ *#.*$//' || true)
if [[ -n "$RETIRE" ]] && bash -c "$RETIRE" && [[ $(grep -c '^static-auth-secret=' "$GEN/turnserver.conf") -eq 1 ]]; then
    e2e_stop turn
    start_relay
    relay_401 retired-old-credentials-refused "$OLD_USER" "$OLD_PASS"
    relay_ok retired-new-credentials "$NEW_USER" "$NEW_PASS"
else
    e2e_record retire-old-secret FAIL "the printed retire command did not leave exactly one secret: $RETIRE"
fi
e2e_stop prosody2

# --- The same secret through Include and string concatenation ------------------
# The fragment rewritten by hand as people do: the secret split and joined with `..`,
# the host from a `local` built with `..`. Prosody must hand out the same
# credentials, and `jitsi check` must read the layout the way Prosody does (no note about the Lua
# files; notes about the test relay's own turnserver.conf, such as allow-loopback-peers, are expected).
SECRET2=$(sed -n 's/^external_service_secret = "\(.*\)";$/\1/p' "$GEN/prosody-turn.cfg.lua")
sed -e "s/^external_service_secret = .*/external_service_secret = \"${SECRET2:0:20}\" .. \"${SECRET2:20}\";/" \
    -e 's/host = "127.0.0.1"/host = turn_host/g' "$GEN/prosody-turn.cfg.lua" >"$E2E_DIR/split-turn.cfg.lua"
write_prosody prosody4 "$E2E_DIR/split-turn.cfg.lua" include
if "$BIN" jitsi check --allow-udp-only --conf "$GEN/turnserver.conf" "$E2E_DIR/prosody4/prosody.cfg.lua" \
    >"$E2E_DIR/check-include.log" 2>&1 && grep -q '^OK:' "$E2E_DIR/check-include.log" &&
    ! grep '^note:' "$E2E_DIR/check-include.log" | grep -q 'cfg\.lua'; then
    e2e_record check-include-concat PASS "Include \"conf.d/*.cfg.lua\" + \"..\" read as Prosody does: agrees"
else
    e2e_record check-include-concat FAIL "$(tr '\n' ' ' <"$E2E_DIR/check-include.log")"
fi
if fetch_turn prosody4 && grep -q '"host": "127.0.0.1"' <<<"$SERVICES"; then
    relay_ok include-concat-credentials-relay "$TURN_USER" "$TURN_PASS"
elif [[ -n "${SERVICES:-}" ]]; then
    e2e_record include-concat-credentials-relay FAIL "Prosody did not evaluate the host to 127.0.0.1: $SERVICES"
else
    e2e_record include-concat-credentials-relay FAIL "services query failed (see $E2E_DIR)"
fi
e2e_stop prosody4

# --- A Prosody with the wrong secret -------------------------------------------
"$BIN" jitsi init --host 127.0.0.1 --port "$TURN_PORT" --transports udp --realm "$DOMAIN" \
    --out "$E2E_DIR/wrong" >/dev/null 2>&1 || e2e_die "init for the wrong secret failed"
if "$BIN" jitsi check --conf "$GEN/turnserver.conf" "$E2E_DIR/wrong/prosody-turn.cfg.lua" >"$E2E_DIR/check-wrong.log" 2>&1; then
    e2e_record check-wrong-secret FAIL "check exited 0 for a wrong secret"
elif grep -q 'secrets differ' "$E2E_DIR/check-wrong.log"; then
    e2e_record check-wrong-secret PASS "$(grep -m1 MISMATCH "$E2E_DIR/check-wrong.log" | cut -c1-110)..."
else
    e2e_record check-wrong-secret FAIL "$(tr '\n' ' ' <"$E2E_DIR/check-wrong.log")"
fi
write_prosody prosody3 "$E2E_DIR/wrong/prosody-turn.cfg.lua"
if fetch_turn prosody3; then
    relay_401 wrong-secret-refused "$TURN_USER" "$TURN_PASS"
else
    e2e_record wrong-secret-refused FAIL "services query failed"
fi
e2e_stop prosody3

e2e_summary "Jitsi/Prosody credentials through ferroturn ($BIN)"
