#!/usr/bin/env python3
"""Prints how a deployment file starts ferroturn, as bash array assignments to `eval`:

    LAUNCH_ARGS=(...)   the arguments after the binary
    LAUNCH_ENV=(...)    NAME=VALUE pairs of the process environment
    LAUNCH_PRE=(...)    arguments of a command to run first that must succeed (systemd's
                        ExecStartPre), empty when there is none
    LAUNCH_NET=...      "host", or "bridge" for a compose service on docker's bridge network
    LAUNCH_PUBLISH=(...) for "bridge": the published ports as "PROTO HOSTPORTS CONTAINERPORTS"
                        (a port or A-B), without those published on one host address only

  launch_spec.py compose FILE DOTENV WORKDIR   a docker-compose service `turn`: its command,
      its `environment` with ${VAR}, ${VAR:-default} and ${VAR:?msg} taken from DOTENV (a
      KEY=VALUE file, like docker-compose's .env), the image's ENV lines (docker/Dockerfile),
      and container paths of its volumes mapped to host paths under WORKDIR (a named volume
      becomes an empty directory there; a bind mount's source is resolved beside FILE).
  launch_spec.py systemd UNIT CONF ENVFILE   a systemd unit's ExecStartPre/ExecStart (the
      caller runs its own binary in place of the unit's), its config path replaced by CONF and
      its EnvironmentFile read from ENVFILE.

Only what the file says is used; nothing is added.
"""
import os
import re
import shlex
import sys

import yaml

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def read_dotenv(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def interpolate(text, env):
    def sub(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return arg
            return value
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                sys.exit("compose: %s: %s" % (name, arg))
            return value
        return value or ""
    return VAR.sub(sub, str(text))


def dockerfile_env(path):
    """ENV lines of the Dockerfile (KEY=VALUE form, with continuations)."""
    text = open(path).read().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for part in shlex.split(line[4:]):
                if "=" in part:
                    k, _, v = part.partition("=")
                    env[k] = v
    return env


def emit(name, items):
    print("%s=(%s)" % (name, " ".join(shlex.quote(str(i)) for i in items)))


def compose(path, dotenv, workdir):
    env_in = read_dotenv(dotenv)
    doc = yaml.safe_load(open(path))
    svc = doc["services"]["turn"]
    base = os.path.dirname(os.path.abspath(path))
    mounts = {}
    for vol in svc.get("volumes", []):
        src, dst = interpolate(vol, env_in).split(":")[:2]
        if src.startswith(("/", ".")):
            host = os.path.normpath(os.path.join(base, src))
        else:
            host = os.path.join(workdir, "volume-" + src)
            os.makedirs(host, exist_ok=True)
        mounts[dst] = host
    args = [mounts.get(interpolate(a, env_in), interpolate(a, env_in)) for a in svc.get("command", [])]
    env = dockerfile_env(os.path.join(base, "Dockerfile"))
    environment = svc.get("environment", {})
    if isinstance(environment, list):
        environment = dict(e.split("=", 1) for e in environment)
    for k, v in environment.items():
        env[k] = interpolate("" if v is None else v, env_in)
    emit("LAUNCH_ARGS", args)
    emit("LAUNCH_ENV", ["%s=%s" % kv for kv in env.items()])
    emit("LAUNCH_PRE", [])
    host = svc.get("network_mode") == "host"
    print("LAUNCH_NET=%s" % ("host" if host else "bridge"))
    publish = []
    for p in [] if host else svc.get("ports", []):
        spec, _, proto = interpolate(p, env_in).partition("/")
        parts = spec.split(":")
        if len(parts) == 3:
            continue  # published on one host address (e.g. 127.0.0.1 for metrics)
        publish.append("%s %s %s" % (proto or "tcp", parts[0], parts[-1]))
    emit("LAUNCH_PUBLISH", publish)


def systemd(unit, conf, envfile):
    keys = {}
    for line in open(unit):
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            keys.setdefault(k, []).append(v)

    def command(line):
        words = shlex.split(line)
        exe = words[0]
        out = []
        for w in words[1:]:
            out.append(conf if w.endswith("turnserver.conf") else w)
        return exe, out

    exe, pre = command(keys["ExecStartPre"][0])
    exe2, args = command(keys["ExecStart"][0])
    if exe != exe2 or not exe.endswith("/ferroturn"):
        sys.exit("systemd: unexpected binaries %s / %s" % (exe, exe2))
    if not any(v.lstrip("-").endswith("ferroturn.env") for v in keys.get("EnvironmentFile", [])):
        sys.exit("systemd: the unit no longer reads an EnvironmentFile ending in ferroturn.env")
    emit("LAUNCH_ARGS", args)
    emit("LAUNCH_ENV", ["%s=%s" % kv for kv in read_dotenv(envfile).items()])
    emit("LAUNCH_PRE", pre)
    print("LAUNCH_NET=host")
    emit("LAUNCH_PUBLISH", [])


def main(argv):
    if len(argv) == 5 and argv[1] == "compose":
        compose(argv[2], argv[3], argv[4])
    elif len(argv) == 5 and argv[1] == "systemd":
        systemd(argv[2], argv[3], argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
