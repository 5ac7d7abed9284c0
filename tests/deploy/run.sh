#!/usr/bin/env bash
# Deployment tests: Helm chart, compose files, systemd unit, each checked on its own and by
# starting the real binary with exactly the config it produces (loopback only).
#
#   tests/deploy/run.sh [BINARY]      (default: target/release/ferroturn)
#
# Installs what it needs when missing: PyPI's helm-python-sdk (Helm's engine, no helm binary)
# and PyYAML, Debian's docker-compose and prometheus (promtool). Ends with `N passed, N failed`; exits non-zero on failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BINARY=${1:-$ROOT/target/release/ferroturn}

fail_setup() {
    echo "deploy: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "deploy: need root (or sudo) for: $*" >&2
        return 1
    fi
}

[[ -x "$BINARY" ]] || fail_setup "binary '$BINARY' not found; build it with cargo build --release"
command -v python3 >/dev/null 2>&1 || fail_setup "python3 is missing"

if ! python3 -c 'import helm_python' >/dev/null 2>&1; then
    echo "deploy: installing helm-python-sdk" >&2
    timeout 600 python3 -m pip install --quiet helm-python-sdk >&2 || fail_setup "pip install helm-python-sdk failed"
fi
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
    echo "deploy: installing PyYAML" >&2
    timeout 600 python3 -m pip install --quiet PyYAML >&2 || fail_setup "pip install PyYAML failed"
fi
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "deploy: installing Debian's docker-compose" >&2
    command -v apt-get >/dev/null 2>&1 || fail_setup "apt-get not found; install docker-compose by hand"
    as_root apt-get update -qq >&2 || fail_setup "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >&2 ||
        fail_setup "apt-get install docker-compose failed"
fi

if ! command -v promtool >/dev/null 2>&1; then
    # promtool checks the alert rules (metrics_checks.py); Debian ships it in prometheus.
    echo "deploy: installing Debian's prometheus (for promtool)" >&2
    command -v apt-get >/dev/null 2>&1 || fail_setup "apt-get not found; install promtool by hand"
    as_root apt-get update -qq >&2 || fail_setup "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2 ||
        fail_setup "apt-get install prometheus failed"
fi

cd "$ROOT" || fail_setup "cannot cd to $ROOT"
export PYTHONDONTWRITEBYTECODE=1
exec timeout 900 python3 "$ROOT/tests/deploy/main.py" "$BINARY"
