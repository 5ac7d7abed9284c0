"""Compose checks: `docker-compose config` accepts every compose file without a warning, the
normalised result has the drop-in's shape, and the binary starts with its environment,
command and mounted turnserver.conf."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile

import yaml

from lib import Results, run_ferroturn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKER = os.path.join(ROOT, "docker")

# What an operator puts in .env (docker-jitsi-meet's names for the Jitsi variant).
TEST_ENV = {
    "TURN_STATIC_AUTH_SECRET": "compose-test-secret",
    "TURN_CREDENTIALS": "jitsi-env-test-secret",
    "EXTERNAL_IP": "203.0.113.10",
    "TURN_EXTERNAL_IP": "203.0.113.10",
    "TURN_ALLOWED_PEER_IP": "10.0.0.5",
}


def compose_config(path: str, env: dict[str, str], project_dir: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TURN", "EXTERNAL_IP", "CONFIG", "FERROTURN"))}
    base.update(env)
    return subprocess.run(
        ["docker-compose", "--project-directory", project_dir, "-f", path, "config"],
        env=base, capture_output=True, text=True, timeout=60,
    )


def volume_source(vol, target: str) -> str | None:
    if isinstance(vol, str):
        parts = vol.split(":")
        return parts[0] if len(parts) >= 2 and parts[1] == target else None
    return vol.get("source") if vol.get("target") == target else None


def port_set(ports) -> set[tuple[int, str]]:
    out = set()
    for p in ports or []:
        if isinstance(p, dict):
            out.add((int(p["published"]), p.get("protocol", "tcp")))
        else:
            spec, _, proto = str(p).partition("/")
            out.add((int(spec.split(":")[-2]), proto or "tcp"))
    return out


def run(res: Results, binary: str) -> None:
    print("== docker-compose files (docker-compose %s)" % subprocess.run(
        ["docker-compose", "version", "--short"], capture_output=True, text=True, timeout=30).stdout.strip())
    files = sorted(glob.glob(os.path.join(DOCKER, "docker-compose*.yaml")))
    res.check("compose files present: bridge, host network, docker-jitsi-meet", len(files) >= 3, str(files))
    # The Dockerfile (no docker engine here: its structure is checked, not built).
    dockerfile = open(os.path.join(DOCKER, "Dockerfile")).read()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    froms = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    pinned = all(
        re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", args.get(f.strip("${}"), f)) for f in froms
    )
    res.check("Dockerfile: every base image pinned by digest", bool(froms) and pinned, f"{froms} {args}")
    deps_at = dockerfile.find("COPY Cargo.toml Cargo.lock ./")
    fetch_at = dockerfile.find("cargo fetch --locked")
    all_at = dockerfile.find("COPY . .")
    res.check(
        "Dockerfile: dependencies fetched and built in layers before the sources are copied",
        0 <= deps_at < fetch_at < all_at and dockerfile.find("--offline --bin ferroturn") < all_at,
    )
    res.check(
        "Dockerfile: the shipped binary is built without debug info and stripped",
        "CARGO_PROFILE_RELEASE_DEBUG=0" in dockerfile and "CARGO_PROFILE_RELEASE_STRIP=symbols" in dockerfile,
    )
    # The README copies env.example to docker/.env and writes the secret into it.
    in_git = subprocess.run(["git", "-C", ROOT, "rev-parse"], capture_output=True).returncode == 0
    ignored = [] if not in_git else [
        p for p in ("docker/.env", ".env", "docker/ferroturn.env")
        if subprocess.run(["git", "-C", ROOT, "check-ignore", "-q", p]).returncode == 0
    ]
    tracked = subprocess.run(["git", "-C", ROOT, "check-ignore", "-q", "docker/env.example"]).returncode
    if not in_git:
        res.skip(".env files are git-ignored", "not a git checkout")
    else:
        res.check(".env files (secrets) are git-ignored, docker/env.example is not",
                  len(ignored) == 3 and tracked == 1, f"ignored: {ignored}")
    with tempfile.TemporaryDirectory(prefix="ferroturn-compose-") as cfg:
        # docker-jitsi-meet's $CONFIG folder, laid out as the Jitsi variant's comments say.
        os.makedirs(os.path.join(cfg, "ferroturn"))
        shutil.copy(os.path.join(DOCKER, "turnserver.conf"), os.path.join(cfg, "ferroturn", "turnserver.conf"))
        env = dict(TEST_ENV, CONFIG=cfg)
        for path in files:
            name = os.path.basename(path)
            r = compose_config(path, env, DOCKER)
            res.check(
                f"{name}: docker-compose config accepts it with no warning",
                r.returncode == 0 and r.stderr.strip() == "",
                (r.stderr or r.stdout).strip()[:500],
            )
            if r.returncode != 0:
                continue
            cfgdoc = yaml.safe_load(r.stdout)
            svc = cfgdoc["services"]["turn"]
            senv = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
            host = svc.get("network_mode") == "host"
            res.check(
                f"{name}: restart unless-stopped, read-only root, cap_drop ALL + NET_BIND_SERVICE, SIGTERM",
                svc.get("restart") == "unless-stopped"
                and svc.get("read_only") is True
                and svc.get("cap_drop") == ["ALL"]
                and svc.get("cap_add") == ["NET_BIND_SERVICE"]
                and svc.get("stop_signal") == "SIGTERM",
                str({k: svc.get(k) for k in ("restart", "read_only", "cap_drop", "cap_add", "stop_signal")}),
            )
            used = set()
            for v in svc.get("volumes", []):
                src = v.split(":")[0] if isinstance(v, str) else v.get("source")
                typ = None if isinstance(v, str) else v.get("type")
                if typ == "volume" or (src and not src.startswith(("/", ".", "~", "$"))):
                    used.add(src)
            declared = set((cfgdoc.get("volumes") or {}).keys())
            res.check(
                f"{name}: named volumes used == declared",
                used == declared and used,
                f"used {used} declared {declared}",
            )
            secret_var = "TURN_CREDENTIALS" if "jitsi" in name else "TURN_STATIC_AUTH_SECRET"
            res.check(
                f"{name}: secret from ${{{secret_var}}} into FERROTURN_STATIC_AUTH_SECRET",
                senv.get("FERROTURN_STATIC_AUTH_SECRET") == env[secret_var],
                str(senv),
            )
            lo, hi = int(senv.get("FERROTURN_MIN_PORT", 0)), int(senv.get("FERROTURN_MAX_PORT", 0))
            if host:
                res.check(f"{name}: network_mode host publishes no ports", not svc.get("ports"))
            else:
                got = port_set(svc.get("ports"))
                want = {(3478, "udp"), (3478, "tcp"), (5349, "udp"), (5349, "tcp"), (9641, "tcp")}
                want |= {(p, "udp") for p in range(lo, hi + 1)}
                res.check(
                    f"{name}: ports 3478 and 5349 tcp+udp, relay {lo}-{hi}/udp == min-port..max-port",
                    got == want and (lo, hi) == (49000, 49020),
                    f"diff {sorted(got ^ want)}",
                )
            conf_src = next(
                (s for s in (volume_source(v, "/etc/coturn/turnserver.conf") for v in svc.get("volumes", [])) if s),
                None,
            )
            res.check(f"{name}: turnserver.conf mounted read-only at /etc/coturn/turnserver.conf",
                      conf_src is not None and os.path.isfile(conf_src), str(svc.get("volumes")))
            if conf_src is None or not os.path.isfile(conf_src):
                continue
            command = [str(a) for a in (svc.get("command") or [])]
            idx = command.index("-c") + 1 if "-c" in command else None
            run_ferroturn(res, name, binary, open(conf_src).read(), senv, command, idx)

        # The check above must catch a volume used under one name and declared under another.
        with open(files[0]) as f:
            text = f.read()
        broken = os.path.join(DOCKER, ".compose-volume-mismatch.yaml")
        try:
            with open(broken, "w") as f:
                f.write(text.replace("- turn-certs:/etc", "- turn-cert:/etc", 1))
            r = compose_config(broken, env, DOCKER)
            res.check(
                "docker-compose config refuses a named volume that is not declared",
                r.returncode != 0 or r.stderr.strip() != "",
                r.stdout[:200],
            )
        finally:
            os.unlink(broken)
