"""Helm chart checks: lint, render in several deployments, assert on the rendered objects,
reject wrong values, and start the binary with the config the chart renders."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile

import yaml

import helm_python as helm
from lib import Results, run_ferroturn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(ROOT, "charts", "ferroturn")

REFERENCE = {
    # Jitsi on Kubernetes behind a NAT: the relay runs on one host with one public address.
    "publicHost": "turn.example.org",
    "relay": {"minPort": 49000, "maxPort": 49020},
    "externalIP": {"address": "203.0.113.10"},
    "auth": {"secret": {"name": "jitsi-turn-secret", "key": "TURN_CREDENTIALS"}},
    "allowedPeerIPs": ["10.0.0.5"],
    "nodeSelector": {"ferroturn.example.org/relay": "true"},
}
DAEMONSET = {
    "kind": "DaemonSet",
    "hostNetwork": True,
    "externalIP": {"fromHostIP": True},
    "relay": {"minPort": 40000, "maxPort": 49999},
}
LOADBALANCER_TLS = {
    "hostNetwork": False,
    "service": {"enabled": True, "type": "LoadBalancer", "loadBalancerIP": "198.51.100.7"},
    "externalIP": {"address": "198.51.100.7"},
    "relay": {"minPort": 49000, "maxPort": 49020},
    "publicHost": "turn.example.org",
    "tls": {
        "enabled": True,
        "certManager": {"enabled": True, "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
    },
}


def objects(manifests: dict[str, str]) -> list[dict]:
    out = []
    for name, text in manifests.items():
        if name.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append(doc)
    return out


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind]


def resolve_env(env_list: list[dict], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """Kubernetes env semantics: $(VAR) expands earlier entries, the downward API gives the
    pod's and node's address (here: loopback, the test's node), secretKeyRef reads a Secret."""
    env: dict[str, str] = {}
    for e in env_list:
        if "value" in e:
            env[e["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), str(e["value"])
            )
        elif "fieldRef" in e.get("valueFrom", {}):
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            env[e["name"]] = "127.0.0.1" if path in ("status.podIP", "status.hostIP") else "test"
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets.get((ref["name"], ref["key"]), f"test-secret-{ref['name']}")
    return env


def common_assertions(res: Results, label: str, objs: list[dict], values: dict) -> dict:
    """Assertions every rendering must pass; returns the pieces the live run needs."""
    kind = values.get("kind", "Deployment")
    work = by_kind(objs, kind)
    res.check(f"{label}: renders one {kind}", len(work) == 1, f"got {[o['kind'] for o in objs]}")
    if not work:
        return {}
    w = work[0]
    pod = w["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc = c.get("securityContext", {})
    psc = pod.get("securityContext", {})
    res.check(
        f"{label}: securityContext non-root, read-only root, drop ALL, add NET_BIND_SERVICE",
        psc.get("runAsNonRoot") is True
        and sc.get("readOnlyRootFilesystem") is True
        and sc.get("allowPrivilegeEscalation") is False
        and sc.get("capabilities", {}).get("drop") == ["ALL"]
        and sc.get("capabilities", {}).get("add") == ["NET_BIND_SERVICE"],
        f"pod {psc} container {sc}",
    )
    ports = {p.get("name"): p for p in c.get("ports", []) if p.get("name")}
    metrics_port = values.get("metrics", {}).get("port", 9641)
    rp, lp = c.get("readinessProbe", {}), c.get("livenessProbe", {})
    res.check(
        f"{label}: probes: readiness GET /readyz, liveness GET /healthz on the metrics port",
        rp.get("httpGet", {}).get("path") == "/readyz"
        and lp.get("httpGet", {}).get("path") == "/healthz"
        and rp["httpGet"].get("port") == "metrics"
        and lp["httpGet"].get("port") == "metrics"
        and ports.get("metrics", {}).get("containerPort") == metrics_port,
        f"readiness {rp} liveness {lp} ports {ports}",
    )
    listen = values.get("listener", {}).get("port", 3478)
    res.check(
        f"{label}: listener {listen} declared for UDP and TCP",
        ports.get("turn-udp", {}).get("containerPort") == listen
        and ports.get("turn-udp", {}).get("protocol") == "UDP"
        and ports.get("turn-tcp", {}).get("containerPort") == listen
        and ports.get("turn-tcp", {}).get("protocol") == "TCP",
        str(ports),
    )
    sref = next((e for e in c.get("env", []) if e["name"] == "FERROTURN_STATIC_AUTH_SECRET"), {})
    want = values.get("auth", {}).get("secret", {})
    ref = sref.get("valueFrom", {}).get("secretKeyRef", {})
    res.check(
        f"{label}: FERROTURN_STATIC_AUTH_SECRET via secretKeyRef "
        f"{want.get('name', 'jitsi-turn-secret')}/{want.get('key', 'TURN_CREDENTIALS')}",
        ref.get("name") == want.get("name", "jitsi-turn-secret")
        and ref.get("key") == want.get("key", "TURN_CREDENTIALS"),
        str(sref),
    )
    cms = by_kind(objs, "ConfigMap")
    conf = cms[0]["data"]["turnserver.conf"] if cms else ""
    relay = values.get("relay", {})
    lo, hi = relay.get("minPort", 49152), relay.get("maxPort", 65535)
    res.check(
        f"{label}: turnserver.conf relay range {lo}-{hi}",
        f"\nmin-port={lo}\n" in conf and f"\nmax-port={hi}\n" in conf,
        conf,
    )
    res.check(
        f"{label}: no secret in the ConfigMap",
        "static-auth-secret" not in conf and "TURN_CREDENTIALS" not in conf,
    )
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cm_vol = vols.get(mounts.get("/etc/ferroturn", ""), {})
    res.check(
        f"{label}: ConfigMap mounted at /etc/ferroturn, read with -c /etc/ferroturn/turnserver.conf",
        cm_vol.get("configMap", {}).get("name") == (cms[0]["metadata"]["name"] if cms else None)
        and c.get("args", [])[:2] == ["-c", "/etc/ferroturn/turnserver.conf"],
        f"mounts {mounts} args {c.get('args')}",
    )
    drain = int(re.search(r"^drain-timeout=(\d+)$", conf, re.M).group(1)) if "drain-timeout=" in conf else 0
    res.check(
        f"{label}: terminationGracePeriodSeconds covers the drain ({drain} s)",
        pod.get("terminationGracePeriodSeconds", 30) > drain > 0,
        str(pod.get("terminationGracePeriodSeconds")),
    )
    host_net = values.get("hostNetwork", True)
    res.check(
        f"{label}: hostNetwork={host_net} with matching dnsPolicy",
        pod.get("hostNetwork") is host_net
        and (pod.get("dnsPolicy") == "ClusterFirstWithHostNet") == host_net,
        f"hostNetwork {pod.get('hostNetwork')} dnsPolicy {pod.get('dnsPolicy')}",
    )
    pdbs = by_kind(objs, "PodDisruptionBudget")
    svc_metrics = [s for s in by_kind(objs, "Service") if s["metadata"]["name"].endswith("-metrics")]
    res.check(
        f"{label}: PodDisruptionBudget and metrics Service on {metrics_port}",
        len(pdbs) == 1
        and pdbs[0]["spec"]["selector"]["matchLabels"] == w["spec"]["selector"]["matchLabels"]
        and len(svc_metrics) == 1
        and svc_metrics[0]["spec"]["ports"][0]["port"] == metrics_port,
    )
    return {"workload": w, "container": c, "conf": conf}


def live(res: Results, label: str, binary: str, objs: list[dict], parts: dict, extra_files=None) -> None:
    secrets = {}
    for s in by_kind(objs, "Secret"):
        for k, v in s.get("data", {}).items():
            secrets[(s["metadata"]["name"], k)] = base64.b64decode(v).decode()
    c = parts["container"]
    env = resolve_env(c.get("env", []), secrets)
    args = list(c.get("args", []))
    run_ferroturn(res, label, binary, parts["conf"], env, args, args.index("-c") + 1, extra_files)


def self_signed(tmp: str) -> dict[str, str] | None:
    if not shutil.which("openssl"):
        return None
    crt, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=turn.example.org", "-days", "2", "-keyout", key, "-out", crt],
        capture_output=True, timeout=30,
    )
    return {"cert": crt, "pkey": key} if r.returncode == 0 else None


def render(chart: helm.Chart, values: dict, name: str = "turn") -> list[dict]:
    return objects(chart.render(values, name=name, namespace="jitsi", is_install=True))


def run(res: Results, binary: str) -> None:
    print("== Helm chart (helm-python-sdk, Helm %s)" % helm.helm_sdk_version())
    report = helm.lint(CHART, strict=True)
    bad = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    res.check("helm lint --strict: no warnings or errors", not bad and not report.get("errors"), str(report))

    chart = helm.Chart.load(CHART)

    # Defaults.
    objs = render(chart, {})
    parts = common_assertions(res, "defaults", objs, {})
    res.check("defaults: no Secret created (uses the existing jitsi-turn-secret)", not by_kind(objs, "Secret"))
    if parts:
        live(res, "defaults", binary, objs, parts)

    # The reference deployment.
    objs = render(chart, REFERENCE)
    parts = common_assertions(res, "reference", objs, REFERENCE)
    if parts:
        env = {e["name"]: e.get("value") for e in parts["container"]["env"]}
        res.check(
            "reference: FERROTURN_EXTERNAL_IP=203.0.113.10, relay on the pod address",
            env.get("FERROTURN_EXTERNAL_IP") == "203.0.113.10" and env.get("FERROTURN_RELAY_IP") == "$(POD_IP)",
            str(env),
        )
        res.check(
            "reference: allowed-peer-ip=10.0.0.5 for the videobridge",
            "\nallowed-peer-ip=10.0.0.5\n" in parts["conf"],
        )
        w = parts["workload"]
        res.check(
            "reference: Deployment, 1 replica, maxSurge 0 (node ports are exclusive)",
            w["spec"]["replicas"] == 1 and w["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0,
        )
        live(res, "reference", binary, objs, parts)

    # DaemonSet + hostNetwork, each node advertising its own address.
    objs = render(chart, DAEMONSET)
    parts = common_assertions(res, "daemonset", objs, DAEMONSET)
    if parts:
        env = parts["container"]["env"]
        host_ip = next((e for e in env if e["name"] == "HOST_IP"), {})
        ext = next((e for e in env if e["name"] == "FERROTURN_EXTERNAL_IP"), {})
        res.check(
            "daemonset: FERROTURN_EXTERNAL_IP from status.hostIP (downward API)",
            host_ip.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.hostIP"
            and ext.get("value") == "$(HOST_IP)",
            f"{host_ip} {ext}",
        )
        res.check("daemonset: no replicas field", "replicas" not in parts["workload"]["spec"])
        live(res, "daemonset", binary, objs, parts)

    # LoadBalancer + TLS from cert-manager.
    objs = render(chart, LOADBALANCER_TLS)
    parts = common_assertions(res, "loadbalancer-tls", objs, LOADBALANCER_TLS)
    if parts:
        svcs = [s for s in by_kind(objs, "Service") if not s["metadata"]["name"].endswith("-metrics")]
        sp = svcs[0]["spec"] if svcs else {}
        got = {(p["port"], p["protocol"]) for p in sp.get("ports", [])}
        want = {(3478, "UDP"), (3478, "TCP"), (5349, "TCP")} | {(p, "UDP") for p in range(49000, 49021)}
        res.check(
            "loadbalancer-tls: LoadBalancer Service with 3478 udp/tcp, 5349 tcp and relay 49000-49020/udp, "
            "externalTrafficPolicy Local",
            sp.get("type") == "LoadBalancer" and got == want and sp.get("externalTrafficPolicy") == "Local",
            f"{sp.get('type')} {sorted(got ^ want)}",
        )
        certs = by_kind(objs, "Certificate")
        pod = parts["workload"]["spec"]["template"]["spec"]
        tls_vol = next((v for v in pod["volumes"] if v["name"] == "tls"), {})
        res.check(
            "loadbalancer-tls: cert-manager Certificate feeds the Secret mounted for cert/pkey",
            len(certs) == 1
            and certs[0]["spec"]["dnsNames"] == ["turn.example.org"]
            and tls_vol.get("secret", {}).get("secretName") == certs[0]["spec"]["secretName"]
            and "\ncert=/etc/ferroturn-tls/tls.crt\n" in parts["conf"]
            and "\npkey=/etc/ferroturn-tls/tls.key\n" in parts["conf"],
            f"{certs} {tls_vol}",
        )
        with tempfile.TemporaryDirectory() as tmp:
            files = self_signed(tmp)
            if files is None:
                res.skip("loadbalancer-tls: live run", "openssl could not make a test certificate")
            else:
                live(res, "loadbalancer-tls", binary, objs, parts, files)

    # TLS from an existing Secret, hostPort mode.
    vals = {"hostNetwork": False, "hostPort": {"enabled": True}, "relay": {"minPort": 49000, "maxPort": 49004},
            "tls": {"enabled": True, "existingSecret": "turn-tls"}}
    objs = render(chart, vals)
    w = by_kind(objs, "Deployment")[0]
    c = w["spec"]["template"]["spec"]["containers"][0]
    host_ports = sorted(p["hostPort"] for p in c["ports"] if "hostPort" in p and p["protocol"] == "UDP")
    vols = {v["name"]: v for v in w["spec"]["template"]["spec"]["volumes"]}
    res.check(
        "hostport-tls: hostPorts for 3478/udp and relay 49000-49004, TLS from Secret turn-tls",
        host_ports == [3478, 49000, 49001, 49002, 49003, 49004]
        and vols.get("tls", {}).get("secret", {}).get("secretName") == "turn-tls"
        and not by_kind(objs, "Certificate"),
        f"{host_ports} {vols.get('tls')}",
    )

    # Generated secret, kept across upgrades and uninstall.
    objs = render(chart, {"auth": {"secret": {"create": True}}})
    secrets = by_kind(objs, "Secret")
    ok = len(secrets) == 1
    if ok:
        s = secrets[0]
        val = base64.b64decode(s["data"].get("TURN_CREDENTIALS", "")).decode()
        ok = (
            s["metadata"]["name"] == "jitsi-turn-secret"
            and s["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep"
            and len(val) == 48
        )
    res.check("generated secret: jitsi-turn-secret/TURN_CREDENTIALS, 48 chars, resource-policy keep", ok, str(secrets))
    tpl = next(t["data"] for t in chart.templates if t["name"].endswith("secret.yaml"))
    res.check("generated secret: template reads the existing value back with lookup", 'lookup "v1" "Secret"' in tpl)

    # ServiceMonitor.
    objs = render(chart, {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})
    sms = by_kind(objs, "ServiceMonitor")
    res.check(
        "servicemonitor: scrapes /metrics on the metrics port",
        len(sms) == 1 and sms[0]["spec"]["endpoints"][0]["port"] == "metrics"
        and sms[0]["spec"]["endpoints"][0]["path"] == "/metrics",
    )

    # NOTES print the Jitsi side.
    notes = chart.render(REFERENCE, name="turn", namespace="jitsi")
    notes = next(v for k, v in notes.items() if k.endswith("NOTES.txt"))
    res.check(
        "NOTES: print TURN_HOST, TURN_PORT and the secret for Prosody",
        "TURN_HOST" in notes and "turn.example.org" in notes and "jitsi-turn-secret" in notes and "TURN_PORT" in notes,
    )
    # docker-jitsi-meet reads TURN_TRANSPORT (a comma list); TURN_TRANSPORTS is ignored by it.
    res.check(
        "NOTES: TURN_TRANSPORT, never TURN_TRANSPORTS",
        "TURN_TRANSPORT: \"udp,tcp\"" in notes and "TURN_TRANSPORTS" not in notes,
        str([l for l in notes.splitlines() if "TURN_TRANSPORT" in l]),
    )

    # The metrics/health listener binds the pod's address, not every node address.
    objs = render(chart, {})
    c = by_kind(objs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    res.check(
        "defaults: metrics/health listener bound to the pod IP (FERROTURN_PROMETHEUS_ADDRESS=$(POD_IP))",
        env.get("FERROTURN_PROMETHEUS_ADDRESS") == "$(POD_IP)"
        and [e["name"] for e in c["env"]].index("POD_IP") < [e["name"] for e in c["env"]].index("FERROTURN_PROMETHEUS_ADDRESS"),
        str(env),
    )
    objs = render(chart, {"metrics": {"address": "0.0.0.0"}})
    c = by_kind(objs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    res.check("metrics.address overrides the bind address", env.get("FERROTURN_PROMETHEUS_ADDRESS") == "0.0.0.0", str(env))

    # kernelFastPath: the opt-in adds exactly BPF and NET_ADMIN and the option; defaults add neither.
    objs = render(chart, {"kernelFastPath": {"enabled": True},
                          "securityContext": {"runAsNonRoot": False, "runAsUser": 0,
                                              "allowPrivilegeEscalation": False,
                                              "readOnlyRootFilesystem": True,
                                              "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}})
    c = by_kind(objs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    caps = c.get("securityContext", {}).get("capabilities", {})
    res.check(
        "kernelFastPath.enabled: adds BPF + NET_ADMIN to NET_BIND_SERVICE, drops ALL, passes --kernel-fast-path auto",
        caps.get("add") == ["NET_BIND_SERVICE", "BPF", "NET_ADMIN"] and caps.get("drop") == ["ALL"]
        and c["args"][-2:] == ["--kernel-fast-path", "auto"],
        f"{caps} {c['args']}",
    )
    c = by_kind(render(chart, {}), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    res.check("kernelFastPath off by default: no --kernel-fast-path, no BPF/NET_ADMIN",
              "--kernel-fast-path" not in c["args"]
              and not {"BPF", "NET_ADMIN"} & set(c["securityContext"]["capabilities"]["add"]),
              str(c["args"]))

    # PodDisruptionBudget: minAvailable, when given, replaces maxUnavailable.
    for vals, want in [
        ({}, {"maxUnavailable": 1}),
        ({"podDisruptionBudget": {"minAvailable": 2}}, {"minAvailable": 2}),
        ({"podDisruptionBudget": {"minAvailable": "50%"}}, {"minAvailable": "50%"}),
    ]:
        pdb = by_kind(render(chart, vals), "PodDisruptionBudget")
        spec = {k: v for k, v in (pdb[0]["spec"] if pdb else {}).items() if k != "selector"}
        res.check(f"podDisruptionBudget {vals or 'defaults'} renders {want}", spec == want, str(spec))

    # Wrong values fail at install time: by the schema, or by the chart's own checks.
    for label, bad, expect in [
        ("schema rejects kind: StatefulSet", {"kind": "StatefulSet"}, "kind"),
        ("schema rejects relay.minPort: 80", {"relay": {"minPort": 80}}, "minPort"),
        ("schema rejects a misspelt key (relayy)", {"relayy": {}}, "relayy"),
        ("schema rejects replicas: \"two\"", {"replicas": "two"}, "replicas"),
        ("schema rejects kernelFastPath.mode: off (leave enabled false instead)",
         {"kernelFastPath": {"enabled": True, "mode": "off"}}, "mode"),
        ("chart rejects hostNetwork with a LoadBalancer Service", {"service": {"enabled": True}}, "hostNetwork"),
        ("chart rejects a 16k relay range listed in a Service",
         {"hostNetwork": False, "service": {"enabled": True}}, "maxListedPorts"),
        ("chart rejects tls.enabled without a certificate source", {"tls": {"enabled": True}}, "existingSecret"),
        ("chart rejects hostNetwork=false with neither hostPort nor a Service (unreachable relay)",
         {"hostNetwork": False}, "hostPort.enabled=true or service.enabled=true"),
    ]:
        try:
            chart.render(bad, name="turn", namespace="jitsi")
            res.check(label, False, "rendered without error")
        except helm.HelmError as e:
            res.check(label, expect in str(e), str(e)[:300])

    subchart(res, binary)


def subchart(res: Results, binary: str) -> None:
    """A minimal umbrella chart that depends on this one as jitsi-helm would."""
    with tempfile.TemporaryDirectory(prefix="ferroturn-umbrella-") as tmp:
        umbrella = os.path.join(tmp, "umbrella")
        os.makedirs(os.path.join(umbrella, "templates"))
        with open(os.path.join(umbrella, "Chart.yaml"), "w") as f:
            yaml.safe_dump(
                {
                    "apiVersion": "v2",
                    "name": "umbrella",
                    "version": "0.0.1",
                    "dependencies": [
                        {
                            "name": "ferroturn",
                            "version": ">=0.1.0",
                            "repository": "file://" + CHART,
                            "alias": "turn",
                            "condition": "turn.enabled",
                        }
                    ],
                },
                f,
            )
        with open(os.path.join(umbrella, "values.yaml"), "w") as f:
            yaml.safe_dump({"turn": dict(REFERENCE, enabled=True)}, f)
        helm.dependency_update(umbrella)
        report = helm.lint(umbrella, with_subcharts=True, strict=True)
        bad = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        res.check("subchart: umbrella lints with the dependency", not bad and not report.get("errors"), str(report))
        # Rendering with a disabled dependency drops it from the loaded chart (Helm processes
        # conditions in place), so every render below starts from a fresh load.
        def load() -> helm.Chart:
            return helm.Chart.load(umbrella)

        objs = objects(load().render(None, name="jitsi", namespace="jitsi"))
        res.check(
            "subchart: turn.enabled=true renders the relay under the alias",
            any(o["kind"] == "Deployment" for o in objs),
            str([o["kind"] for o in objs]),
        )
        parts = common_assertions(res, "subchart", objs, REFERENCE)
        if parts:
            live(res, "subchart", binary, objs, parts)
        off = objects(load().render({"turn": {"enabled": False}}, name="jitsi", namespace="jitsi"))
        res.check("subchart: turn.enabled=false renders nothing", off == [], str([o["kind"] for o in off]))
        try:
            load().render({"turn": {"kind": "StatefulSet"}}, name="jitsi", namespace="jitsi")
            res.check("subchart: schema rejects turn.kind=StatefulSet", False, "rendered")
        except helm.HelmError as e:
            res.check("subchart: schema rejects turn.kind=StatefulSet", "kind" in str(e), str(e)[:200])
