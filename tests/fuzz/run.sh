#!/usr/bin/env bash
# Coverage-guided fuzzing of ferroturn with libFuzzer (through the libfuzzer-sys crate).
#
#   tests/fuzz/run.sh [--smoke | --long | --runs N | --seconds S] [TARGET...]
#
#   --smoke      10 s per target (the default suite runs this; about a minute for all six)
#   --long       10,000,000 inputs per target (seconds for the codec and framing, about an
#                hour for the core on 2 cores)
#   --runs N     N inputs per target
#   --seconds S  S seconds per target
#   TARGET       any of: stun_codec server stream_framing conf_file jitsi_lua jitsi_env
#                (all of them when none is named)
#
# No nightly toolchain is needed: the coverage instrumentation is the stable `-Cpasses=
# sancov-module` plus LLVM options, the same instrumentation cargo-fuzz asks for. The targets
# are built for the host triple so build scripts and proc-macros stay uninstrumented, with
# debug assertions and overflow checks on. No sanitizer: the code fuzzed is safe Rust.
#
# Seeds live in tests/fuzz/corpus/TARGET (committed: RFC 5769 vectors, captured
# turnutils_uclient traffic, the shipped configuration files, hand-written core scripts); what
# the fuzzer learns goes to tests/fuzz/target/corpus/TARGET, crashes to
# tests/fuzz/target/artifacts/TARGET/. A crash is replayed with
#   tests/fuzz/target/x86_64-unknown-linux-gnu/release/TARGET FILE
# and belongs in a regression test in the crate's unit tests.
#
# Prints one line per target (inputs run, edge coverage `cov`, features `ft`, corpus size)
# and ends with `N passed, N failed` (a target passes when it found no crash; one more check
# passes when the core target's session seed still allocates and relays both ways).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL=(stun_codec server stream_framing conf_file jitsi_lua jitsi_env proxy_protocol)
MODE=(-max_total_time=10)
TARGETS=()
while (($# > 0)); do
    case "$1" in
        --smoke) MODE=(-max_total_time=10) ;;
        --long) MODE=(-runs=10000000) ;;
        --runs)
            MODE=(-runs="$2")
            shift
            ;;
        --seconds)
            MODE=(-max_total_time="$2")
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "fuzz: unknown option '$1' (try --help)" >&2
            exit 2
            ;;
        *)
            [[ " ${ALL[*]} " == *" $1 "* ]] || {
                echo "fuzz: unknown target '$1' (one of: ${ALL[*]})" >&2
                exit 2
            }
            TARGETS+=("$1")
            ;;
    esac
    shift
done
((${#TARGETS[@]} > 0)) || TARGETS=("${ALL[@]}")

command -v c++ >/dev/null 2>&1 || {
    echo "fuzz: a C++ compiler is needed to build libFuzzer (apt-get install g++)" >&2
    exit 1
}

HOST=$(rustc -vV | sed -n 's/^host: //p')
FLAGS=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    --cfg fuzzing
)
TARGET_DIR=$HERE/target
echo "fuzz: building ${TARGETS[*]} (instrumented, $HOST)" >&2
RUSTFLAGS="${FLAGS[*]}" cargo build --manifest-path "$HERE/Cargo.toml" --release \
    --target "$HOST" --target-dir "$TARGET_DIR" "${TARGETS[@]/#/--bin=}"
BIN_DIR=$TARGET_DIR/$HOST/release

# A dictionary of the option names the configuration reader knows, taken from its table.
DICT_DIR=$HERE/target/dict
mkdir -p "$DICT_DIR"
grep -o '"[a-z][a-z0-9-]*"' "$HERE/../../src/config/options.rs" | sort -u >"$DICT_DIR/conf_file.dict"

PASSED=0
FAILED=0
# The core target is only worth its inputs if its scripts get past authentication: the
# session seed must allocate and relay both ways (a change in the core's auth breaks this).
if [[ " ${TARGETS[*]} " == *" server "* ]]; then
    trace=$(FERROTURN_FUZZ_TRACE=1 "$BIN_DIR/server" "$HERE/corpus/server/session-udp" 2>&1 |
        grep 'Outcome' || true)
    if [[ "$trace" =~ allocations:\ [1-9].*to_peer:\ [1-9].*to_client:\ [1-9] ]]; then
        echo "fuzz: server seed session-udp allocates and relays both ways" >&2
        PASSED=$((PASSED + 1))
    else
        echo "fuzz: server seed session-udp no longer relays (${trace:-no trace}):" \
            "the script's requests do not get past the core" >&2
        FAILED=$((FAILED + 1))
    fi
fi
printf '%-15s %12s %8s %8s %7s %6s  %s\n' target inputs cov ft corpus secs result
for t in "${TARGETS[@]}"; do
    work=$HERE/target/corpus/$t
    art=$HERE/target/artifacts/$t
    mkdir -p "$work" "$art"
    args=("${MODE[@]}" -print_final_stats=1 -max_len=4096 -timeout=10 -rss_limit_mb=1024
        -artifact_prefix="$art/")
    dict=$HERE/dict/$t.dict
    [[ -f "$dict" ]] || dict=$DICT_DIR/$t.dict
    [[ -f "$dict" ]] && args+=(-dict="$dict")
    log=$HERE/target/$t.log
    start=$SECONDS
    rc=0
    "$BIN_DIR/$t" "${args[@]}" "$work" "$HERE/corpus/$t" >"$log" 2>&1 || rc=$?
    secs=$((SECONDS - start))
    runs=$(LC_ALL=C sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -aE '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    if ((rc == 0)); then
        result=ok
        PASSED=$((PASSED + 1))
    else
        result="CRASH (exit $rc, see $log and $art)"
        FAILED=$((FAILED + 1))
        grep -aE 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 5 >&2 || true
    fi
    printf '%-15s %12s %8s %8s %7s %6s  %s\n' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" \
        "${corp:-?}" "$secs" "$result"
done
echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
