"""systemd unit checks: `systemd-analyze verify`, the hardening it promises, and the binary
started with the unit's ExecStart arguments on the Jitsi example config."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import tempfile

from lib import Results, run_ferroturn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(ROOT, "conf", "ferroturn.service")
INSTALLED_BINARY = "/usr/local/bin/ferroturn"


def parse_unit(path: str) -> dict[str, dict[str, list[str]]]:
    """Unit files allow repeated keys; keep every value."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in open(path):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def run(res: Results, binary: str) -> None:
    print("== systemd unit")
    unit = parse_unit(UNIT)
    svc = unit.get("Service", {})
    one = {k: v[-1] for k, v in svc.items()}
    res.check(
        "unit: DynamicUser, only CAP_NET_BIND_SERVICE, NoNewPrivileges, ProtectSystem=strict, ProtectHome, PrivateTmp",
        one.get("DynamicUser") == "yes"
        and one.get("AmbientCapabilities") == "CAP_NET_BIND_SERVICE"
        and one.get("CapabilityBoundingSet") == "CAP_NET_BIND_SERVICE"
        and one.get("NoNewPrivileges") == "yes"
        and one.get("ProtectSystem") == "strict"
        and one.get("ProtectHome") == "yes"
        and one.get("PrivateTmp") == "yes",
        str(one),
    )
    res.check(
        "unit: RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX, LimitNOFILE >= 65536",
        one.get("RestrictAddressFamilies") == "AF_INET AF_INET6 AF_UNIX"
        and int(one.get("LimitNOFILE", "0")) >= 65536,
    )
    # The fast-path drop-in adds exactly what loading and attaching the eBPF program needs.
    drop = parse_unit(os.path.join(ROOT, "conf", "ferroturn-fast-path.conf")).get("Service", {})
    last = {k: v[-1] for k, v in drop.items()}
    res.check(
        "fast-path drop-in: adds CAP_BPF + CAP_NET_ADMIN, AF_NETLINK, bpf(2), kernel-fast-path=auto",
        last.get("AmbientCapabilities") == "CAP_NET_BIND_SERVICE CAP_BPF CAP_NET_ADMIN"
        and last.get("CapabilityBoundingSet") == "CAP_NET_BIND_SERVICE CAP_BPF CAP_NET_ADMIN"
        and last.get("RestrictAddressFamilies") == "AF_NETLINK"
        and last.get("SystemCallFilter") == "bpf"
        and last.get("Environment") == "FERROTURN_KERNEL_FAST_PATH=auto"
        and "NoNewPrivileges" not in drop and "User" not in drop,
        str(last),
    )
    docs = unit.get("Unit", {}).get("Documentation", [])
    res.check(
        "unit: Documentation= points at ferroturn's docs, not coturn's man page",
        bool(docs) and all("ferroturn" in d and "turnserver" not in d for d in docs),
        str(docs),
    )
    start = shlex.split(one.get("ExecStart", ""))
    drain = int(start[start.index("--drain-timeout") + 1]) if "--drain-timeout" in start else None
    timeout = int(one.get("TimeoutStopSec", "0").rstrip("s") or 0)
    res.check(
        "unit: KillSignal=SIGTERM, ExecReload sends HUP, TimeoutStopSec > --drain-timeout",
        one.get("KillSignal") == "SIGTERM"
        and "-HUP" in one.get("ExecReload", "")
        and drain is not None and timeout > drain,
        f"drain {drain} TimeoutStopSec {timeout}",
    )

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        res.skip("systemd-analyze verify", "systemd-analyze is not installed")
    else:
        # verify insists that ExecStart's binary exists; point a copy at the binary under test.
        with tempfile.TemporaryDirectory(prefix="ferroturn-unit-") as tmp:
            copy = os.path.join(tmp, "ferroturn.service")
            with open(UNIT) as f, open(copy, "w") as g:
                g.write(f.read().replace(INSTALLED_BINARY, os.path.abspath(binary)))
            r = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, timeout=60)
            out = (r.stdout + r.stderr).strip()
            res.check("systemd-analyze verify: no complaint", r.returncode == 0 and out == "", out[:500])

    # The unit's arguments with the Jitsi example installed as /etc/ferroturn/turnserver.conf and
    # the secret from /etc/ferroturn/ferroturn.env.
    args = start[1:]
    conf = open(os.path.join(ROOT, "conf", "turnserver-jitsi.conf")).read()
    env = {"FERROTURN_STATIC_AUTH_SECRET": "systemd-test-secret"}
    run_ferroturn(res, "systemd ExecStart + turnserver-jitsi.conf", binary, conf, env, args, args.index("-c") + 1)
    pre = shlex.split(one.get("ExecStartPre", ""))
    res.check("unit: ExecStartPre runs --check-config on the same file", "--check-config" in pre and
              pre[pre.index("-c") + 1] == args[args.index("-c") + 1])

    tls = open(os.path.join(ROOT, "conf", "turnserver-tls.conf")).read()
    from helm_checks import self_signed  # the same throwaway certificate maker
    with tempfile.TemporaryDirectory() as tmp:
        files = self_signed(tmp)
        if files is None:
            res.skip("turnserver-tls.conf live run", "openssl could not make a test certificate")
        else:
            run_ferroturn(res, "turnserver-tls.conf", binary, tls, env, ["-c", "X"], 1, files)
