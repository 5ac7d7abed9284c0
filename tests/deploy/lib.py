"""Shared pieces of the deployment tests: result counting, a STUN Binding probe, and a runner
that starts the real ferroturn binary with a rendered config, environment and arguments.

Only loopback traffic; every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

MAGIC_COOKIE = 0x2112A442
XOR_MAPPED_ADDRESS = 0x0020

# Options that the deployment files already use but that are still being added to the binary.
# When the binary under test does not know one, it is taken out of the config for the run and
# the run says so; once the binary has it, it is passed through unchanged.
PENDING_OPTIONS = ("drain-timeout",)


class Results:
    """Counts checks; prints one line per check."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures: list[str] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  ok    {name}")
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"  FAIL  {name}" + (f": {detail}" if detail else ""))
        return ok

    def skip(self, name: str, why: str) -> None:
        self.skipped += 1
        print(f"  skip  {name}: {why}")

    def note(self, text: str) -> None:
        print(f"  note  {text}")


def _relay_range(conf_text: str, env: dict[str, str]) -> tuple[int, int]:
    """min-port..max-port as the file and FERROTURN_MIN_PORT/MAX_PORT set them."""
    found = {"min-port": 49152, "max-port": 65535}
    for line in conf_text.splitlines():
        key, _, value = line.strip().partition("=")
        if key in found and value.strip().isdigit():
            found[key] = int(value.strip())
    for key in found:
        value = env.get("FERROTURN_" + key.upper().replace("-", "_"), "")
        if value.isdigit():
            found[key] = int(value)
    return found["min-port"], found["max-port"]


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port the OS reports free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port on 127.0.0.1")


def stun_binding(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """Sends STUN Binding requests to 127.0.0.1:port until a matching success response comes
    back (or the time is up) and checks XOR-MAPPED-ADDRESS names our own socket."""
    txid = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, MAGIC_COOKIE) + txid
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        own_port = s.getsockname()[1]
        while time.monotonic() < deadline:
            s.sendto(request, ("127.0.0.1", port))
            s.settimeout(max(0.05, min(0.3, deadline - time.monotonic())))
            try:
                data, _ = s.recvfrom(2048)
            except (socket.timeout, ConnectionRefusedError):
                continue
            if len(data) < 20:
                continue
            mtype, length, cookie = struct.unpack("!HHI", data[:8])
            if cookie != MAGIC_COOKIE or data[8:20] != txid:
                continue
            if mtype != 0x0101:
                return False, f"answer type 0x{mtype:04x}, not a Binding success"
            pos, end = 20, 20 + length
            while pos + 4 <= end:
                atype, alen = struct.unpack("!HH", data[pos : pos + 4])
                value = data[pos + 4 : pos + 4 + alen]
                if atype == XOR_MAPPED_ADDRESS and len(value) >= 8:
                    xport = struct.unpack("!H", value[2:4])[0] ^ (MAGIC_COOKIE >> 16)
                    xaddr = struct.unpack("!I", value[4:8])[0] ^ MAGIC_COOKIE
                    addr = socket.inet_ntoa(struct.pack("!I", xaddr))
                    if (addr, xport) == ("127.0.0.1", own_port):
                        return True, f"XOR-MAPPED-ADDRESS {addr}:{xport}"
                    return False, f"XOR-MAPPED-ADDRESS {addr}:{xport}, expected 127.0.0.1:{own_port}"
                pos += 4 + ((alen + 3) & ~3)
            return False, "Binding success without XOR-MAPPED-ADDRESS"
    return False, f"no STUN answer from 127.0.0.1:{port} within {timeout}s"


def binary_options(binary: str) -> set[str]:
    """The long option names the binary lists in --help."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    return set(re.findall(r"--([a-zA-Z][a-zA-Z0-9-]*)", out.stdout + out.stderr))


def strip_pending(
    known: set[str], conf: str, env: dict[str, str], args: list[str]
) -> tuple[str, dict[str, str], list[str], list[str]]:
    """Removes the PENDING_OPTIONS the binary does not know yet; returns what was removed."""
    removed: list[str] = []
    for opt in PENDING_OPTIONS:
        if opt in known:
            continue
        kept = []
        for line in conf.splitlines():
            key = re.split(r"[\s=]", line.strip(), maxsplit=1)[0]
            if key == opt:
                removed.append(f"conf line '{line.strip()}'")
            else:
                kept.append(line)
        conf = "\n".join(kept) + "\n"
        var = "FERROTURN_" + opt.upper().replace("-", "_")
        if var in env:
            removed.append(f"env {var}={env.pop(var)}")
        out: list[str] = []
        skip_next = False
        for i, a in enumerate(args):
            if skip_next:
                skip_next = False
                continue
            if a == f"--{opt}":
                removed.append(f"arg {a} {args[i + 1] if i + 1 < len(args) else ''}".strip())
                skip_next = True
            elif a.startswith(f"--{opt}="):
                removed.append(f"arg {a}")
            else:
                out.append(a)
        args = out
    return conf, env, args, removed


def _http_status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1.5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def run_ferroturn(
    res: Results,
    label: str,
    binary: str,
    conf_text: str,
    env: dict[str, str],
    args: list[str],
    conf_arg_index: int | None,
    extra_files: dict[str, str] | None = None,
) -> None:
    """--check-config, then a short live run on loopback, with exactly the given config, env and
    args. Overrides, all on the command line (which wins over file and env): listening address
    127.0.0.1, relay address 127.0.0.1 unless the env already resolves to it, free listener,
    TLS and metrics ports. `conf_arg_index` is the position of the config path in `args` (the
    path the deployment mounts the file at); it is pointed at the rendered file here.
    `extra_files` maps option names (cert, pkey) to local files standing in for mounts."""
    known = binary_options(binary)
    conf_text, env, args, removed = strip_pending(known, conf_text, dict(env), list(args))
    for r in removed:
        res.note(f"{label}: binary lacks a pending option, removed for this run: {r}")
    with tempfile.TemporaryDirectory(prefix="ferroturn-deploy-") as tmp:
        conf_path = os.path.join(tmp, "turnserver.conf")
        with open(conf_path, "w") as f:
            f.write(conf_text)
        args = list(args)
        if conf_arg_index is not None:
            args[conf_arg_index] = conf_path
        else:
            args = ["-c", conf_path] + args
        for opt, path in (extra_files or {}).items():
            args += [f"--{opt}", path]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FERROTURN_")}
        full_env.update(env)
        # These runs stand loopback in for the host's/pod's address; ferroturn refuses a loopback
        # relay advertised under a public external-ip (it could never work), so the public
        # address stands in as loopback too. tests/netns runs these files on real addresses.
        if full_env.get("FERROTURN_EXTERNAL_IP"):
            full_env["FERROTURN_EXTERNAL_IP"] = "127.0.0.1"

        # A pod address stood in by loopback: the stand-in host listens on loopback only too
        # (ferroturn refuses a loopback relay behind a listener other hosts can reach).
        check_args = list(args)
        if full_env.get("FERROTURN_RELAY_IP") == "127.0.0.1":
            check_args += ["--listening-ip", "127.0.0.1"]
        check = subprocess.run(
            [binary, *check_args, "--check-config"], env=full_env, capture_output=True, text=True, timeout=20
        )
        res.check(
            f"{label}: ferroturn --check-config accepts it",
            check.returncode == 0,
            (check.stdout + check.stderr).strip().replace("\n", " | ")[:600],
        )
        if check.returncode != 0:
            return

        # ferroturn refuses a listening port inside its own relay range, and the OS's ephemeral
        # ports overlap the default range: pick one outside the range this config relays on.
        lo, hi = _relay_range(conf_text, env)
        listen = free_port()
        for _ in range(100):
            if not lo <= listen <= hi:
                break
            listen = free_port()
        tls = free_port(socket.SOCK_STREAM)
        metrics = free_port(socket.SOCK_STREAM)
        live = args + [
            "--listening-ip", "127.0.0.1",
            "--listening-port", str(listen),
            "--tls-listening-port", str(tls),
            "--prometheus-address", "127.0.0.1",
            "--prometheus-port", str(metrics),
        ]
        relay_env = env.get("FERROTURN_RELAY_IP", "")
        if relay_env != "127.0.0.1" and "relay-ip" not in conf_text:
            live += ["--relay-ip", "127.0.0.1"]
        log_path = os.path.join(tmp, "ferroturn.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([binary, *live], env=full_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            ok, detail = stun_binding(listen, timeout=5.0)
            if not ok and proc.poll() is not None:
                detail += f"; exited {proc.returncode}: " + open(log_path).read()[-600:]
            res.check(f"{label}: live run answers STUN Binding over UDP", ok, detail)
            # The HTTP listener may open a moment after the relay answers STUN.
            health = None
            deadline = time.monotonic() + 5.0
            while health is None and time.monotonic() < deadline and proc.poll() is None:
                health = _http_status(metrics, "/healthz")
                if health is None:
                    time.sleep(0.1)
            res.check(f"{label}: /healthz answers 200", health == 200,
                      f"got {health}" if health is not None else "no answer on the metrics port within 5 s")
            ready = _http_status(metrics, "/readyz")
            res.check(f"{label}: /readyz answers 200", ready == 200, f"got {ready}")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
                    res.check(f"{label}: exits within 15 s of SIGTERM", False, "had to SIGKILL")
                    return
                res.check(
                    f"{label}: SIGTERM ends the relay with exit 0",
                    proc.returncode == 0,
                    f"exit {proc.returncode}: " + open(log_path).read()[-400:],
                )
