#!/usr/bin/env bash
# The one test command: lint, unit/integration tests, release build, and the
# end-to-end runs with real clients against the release binary.
#
#   tests/run-all.sh [--quick] [--soak]
#
#   --quick   skip `cargo fmt --check` and `cargo clippy` (`cargo doc` still runs)
#   --soak    also the long runs (exported to the test scripts as E2E_SOAK=1):
#             the 10-minute soak (tests/e2e/soak.sh: 10,000 allocations, churn,
#             relay load, flat RSS/fds) and 10^7 fuzz inputs per target
#             (tests/fuzz/run.sh --long) instead of the fuzz smoke run
#
# Installs what the end-to-end tests need when it is missing (Debian's coturn
# package for turnutils_uclient/turnutils_peer, python3), using sudo only when
# not root. Stops at the first failing step.
#
# The last line of output is always `N passed, N failed` (CI parses it). It
# counts the end-to-end scenarios; a step that fails before the end-to-end run
# is reported as `0 passed, 1 failed` so a red run never ends on a green line.
set -euo pipefail

QUICK=0
SOAK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --soak) SOAK=1 ;;
        -h | --help)
            sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "run-all: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export E2E_SOAK=$SOAK

CURRENT_STEP="setup"
E2E_PASSED=0
E2E_FAILED=0
E2E_DONE=0

# Runs at exit whatever happened: names the failing step and prints the count line last.
finish() {
    local rc=$?
    if ((rc != 0)); then
        echo "run-all: FAILED at step '$CURRENT_STEP' (exit $rc)" >&2
        if ((E2E_DONE == 0)); then
            E2E_FAILED=1
        fi
    else
        echo "run-all: all steps passed" >&2
    fi
    echo "$E2E_PASSED passed, $E2E_FAILED failed"
    exit $rc
}
trap finish EXIT

step() {
    CURRENT_STEP=$1
    echo "==> $1" >&2
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "run-all: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || {
        echo "run-all: apt-get not found; install these by hand: $*" >&2
        return 1
    }
    if ((APT_UPDATED == 0)); then
        as_root apt-get update
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# Debian's coturn package must not leave a system turnserver running: the tests
# start their own instances on loopback and an open daemon on :3478 is not wanted.
stop_coturn_daemon() {
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet coturn 2>/dev/null; then
        echo "run-all: the coturn package started a daemon; stopping it" >&2
        as_root systemctl stop coturn
    elif command -v service >/dev/null 2>&1 && service coturn status >/dev/null 2>&1; then
        echo "run-all: the coturn package started a daemon; stopping it" >&2
        as_root service coturn stop
    fi
}

ensure_tools() {
    local need=()
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    command -v timeout >/dev/null 2>&1 || need+=(coreutils)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    command -v c++ >/dev/null 2>&1 || need+=(g++)
    if ! command -v turnutils_uclient >/dev/null 2>&1 || ! command -v turnutils_peer >/dev/null 2>&1; then
        need+=(coturn)
    fi
    if ((${#need[@]} > 0)); then
        echo "run-all: installing ${need[*]}" >&2
        apt_install "${need[@]}"
        if [[ " ${need[*]} " == *" coturn "* ]]; then
            stop_coturn_daemon
        fi
    fi
    command -v turnutils_uclient >/dev/null 2>&1 || {
        echo "run-all: turnutils_uclient still missing after install" >&2
        return 1
    }
}

step "install test tools"
ensure_tools
# The kernel fast path's eBPF program is compiled by the build script when clang and the BPF
# headers are there (without them it is compiled out); the fast-path suite inspects with bpftool.
ensure_bpf_tools() {
    local need=()
    command -v clang >/dev/null 2>&1 || need+=(clang)
    [[ -f /usr/include/bpf/bpf_helpers.h ]] || need+=(libbpf-dev)
    command -v bpftool >/dev/null 2>&1 || need+=(bpftool)
    command -v gcc >/dev/null 2>&1 || need+=(gcc)
    if ((${#need[@]} > 0)); then
        echo "run-all: installing ${need[*]} (kernel fast path)" >&2
        apt_install "${need[@]}"
    fi
}
ensure_bpf_tools

if ((QUICK == 0)); then
    step "cargo fmt --all -- --check"
    cargo fmt --all -- --check
    step "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
else
    echo "run-all: --quick: skipping fmt and clippy" >&2
fi

# The API docs of every crate, with broken links and missing docs as errors (the core crate
# denies missing docs itself; this also catches the server crate's intra-doc links).
step "cargo doc --no-deps --workspace (RUSTDOCFLAGS=-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace

LOADED_TESTS='binary(overload) | binary(hardening) | binary(bench_overload) | binary(http_hardening)'
if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace"
    NEXTEST_ARGS=(--workspace)
    # An empty workspace is not an error here; old nextest lacks the flag.
    if cargo nextest run --help 2>/dev/null | grep -q -- '--no-tests'; then
        NEXTEST_ARGS+=(--no-tests=warn)
    fi
    # The flood and overload tests saturate a core on purpose; beside the other tests on a
    # two-core machine they would starve them (and be starved), so they run alone afterwards.
    cargo nextest run "${NEXTEST_ARGS[@]}" -E "not ($LOADED_TESTS)"
    step "cargo nextest run (flood and overload tests, one at a time)"
    cargo nextest run "${NEXTEST_ARGS[@]}" -E "$LOADED_TESTS" --test-threads 1
    # A dying relay thread must stop the process; the test makes a shard panic through the
    # test-only feature (never in the release build below).
    step "cargo nextest run --features fault-injection --test shard_death"
    cargo nextest run --features fault-injection --test shard_death
else
    step "cargo test --workspace"
    cargo test --workspace -- --test-threads 2
    step "cargo test --features fault-injection --test shard_death"
    cargo test --features fault-injection --test shard_death
fi

step "cargo build --release"
cargo build --release

# End-to-end suites with real clients. Each prints `N passed, N failed` last; all of them run
# even when one fails, and the counts add up into the final line.
SUITES_FAILED=0
run_suite() {
    local name=$1
    shift
    step "$name: $*"
    local log rc=0 counts
    log=$(mktemp "${TMPDIR:-/tmp}/ferroturn-suite.XXXXXX")
    "$@" 2>&1 | tee "$log" || rc=$?
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
    rm -f "$log"
    if [[ -n "$counts" ]]; then
        local p f
        read -r p _ f _ <<<"${counts//,/}"
        E2E_PASSED=$((E2E_PASSED + p))
        E2E_FAILED=$((E2E_FAILED + f))
    elif ((rc == 0)); then
        echo "run-all: $name printed no result line" >&2
        rc=1
    fi
    if ((rc != 0)); then
        echo "run-all: suite '$name' FAILED (exit $rc)" >&2
        SUITES_FAILED=$((SUITES_FAILED + 1))
        if [[ -z "$counts" ]]; then
            E2E_FAILED=$((E2E_FAILED + 1))
        fi
    fi
}

BIN=target/release/ferroturn
run_suite uclient bash tests/e2e/uclient.sh "$BIN" ferroturn
run_suite prosody bash tests/e2e/prosody.sh "$BIN"
run_suite nginx-proxy bash tests/e2e/nginx_proxy.sh "$BIN"
run_suite webrtc bash tests/e2e/webrtc/run.sh "$BIN"
run_suite deploy bash tests/deploy/run.sh "$BIN"
run_suite deb bash tests/deploy/deb_package.sh "$BIN"
run_suite netns bash tests/netns/run.sh "$BIN"
run_suite fast-path bash tests/netns/fast_path.sh "$BIN"
if ((SOAK == 1)); then
    run_suite fuzz-long bash tests/fuzz/run.sh --long
    run_suite soak bash tests/e2e/soak.sh "$BIN"
else
    run_suite fuzz bash tests/fuzz/run.sh --smoke
fi
E2E_DONE=1
if ((SUITES_FAILED > 0)); then
    CURRENT_STEP="end-to-end suites ($SUITES_FAILED failed)"
    exit 1
fi
