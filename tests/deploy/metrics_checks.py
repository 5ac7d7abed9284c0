"""Alert rules and dashboard checks: `promtool check rules` on the plain rules file and on the
PrometheusRule the chart renders, and every metric the rules and the Grafana dashboard use
must be exported by a live ferroturn (started here on loopback, with TLS so the certificate
metric exists)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import yaml

import helm_python as helm
from helm_checks import CHART, objects, self_signed
from lib import Results, free_port, stun_binding

FILES = os.path.join(CHART, "files")
RULES = os.path.join(FILES, "ferroturn-alerts.yaml")
DASHBOARD = os.path.join(FILES, "ferroturn-dashboard.json")

# Series Prometheus makes itself, not the target.
SYNTHETIC = {"up"}
# Metric names as ferroturn exports them: coturn's (turn_, stun_), its own and process_.
METRIC_RE = re.compile(r"\b((?:ferroturn|turn|stun|process)_[a-zA-Z0-9_]*|up)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label names and functions excluded: the former sit
    inside {...} and by/without(...), the latter are followed by a parenthesis)."""
    # Drop label matchers and grouping clauses so label names are not mistaken for metrics.
    stripped = re.sub(r"\{[^}]*\}", " ", expr)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    return set(METRIC_RE.findall(stripped))


def rule_exprs(groups_doc: dict) -> list[str]:
    return [r["expr"] for g in groups_doc.get("groups", []) for r in g.get("rules", [])]


def dashboard_exprs(dash: dict) -> list[str]:
    out = [t["expr"] for p in dash.get("panels", []) for t in p.get("targets", []) if t.get("expr")]
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict) and "query" in q:
            # label_values(metric{...}, label): the metric is the first argument.
            m = re.match(r"label_values\(([^,]+),", q["query"])
            if m:
                out.append(m.group(1))
    return out


def exported_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, 1)[0])
    return names


# Each alert's expression, evaluated by `promtool test rules` on series that must make it fire
# (with the samples it must return) and on series that must leave it quiet. The expressions
# are read from the shipped rules file, so these test what ships. `for:` is not exercised.
I = 'instance="a", job="ferroturn"'
ALERT_CASES: dict[str, list[tuple[list[tuple[str, str]], list[tuple[str, float]]]]] = {
    "FerroturnDown": [
        ([(f"up{{{I}}}", "0x10")], [(f"up{{{I}}}", 0)]),
        ([(f"up{{{I}}}", "1x10"), ('up{instance="n", job="node"}', "0x10")], []),
    ],
    "FerroturnCertificateExpiringSoon": [
        ([(f"ferroturn_tls_certificate_expiry_timestamp_seconds{{{I}}}", f"{300 + 10 * 86400}x10")],
         [(f"{{{I}}}", 10 * 86400)]),
        ([(f"ferroturn_tls_certificate_expiry_timestamp_seconds{{{I}}}", f"{300 + 30 * 86400}x10")], []),
    ],
    "FerroturnCertificateExpiring": [
        ([(f"ferroturn_tls_certificate_expiry_timestamp_seconds{{{I}}}", f"{300 + 2 * 86400}x10")],
         [(f"{{{I}}}", 2 * 86400)]),
        ([(f"ferroturn_tls_certificate_expiry_timestamp_seconds{{{I}}}", f"{300 + 10 * 86400}x10")], []),
    ],
    "FerroturnAllocationsNearQuota": [
        ([(f"ferroturn_allocations{{{I}}}", "95x10"), (f"ferroturn_allocation_quota{{{I}}}", "100x10")],
         [(f"ferroturn_allocation_quota{{{I}}}", 100)]),
        ([(f"ferroturn_allocations{{{I}}}", "50x10"), (f"ferroturn_allocation_quota{{{I}}}", "100x10")], []),
        # total-quota=0 (unlimited) never fires.
        ([(f"ferroturn_allocations{{{I}}}", "95x10"), (f"ferroturn_allocation_quota{{{I}}}", "0x10")], []),
    ],
    "FerroturnRelayPortsNearExhaustion": [
        ([(f'ferroturn_relay_ports{{state="free", {I}}}', "5x10"),
          (f'ferroturn_relay_ports{{state="in_use", {I}}}', "95x10")],
         [(f"{{{I}}}", 0.05)]),
        ([(f'ferroturn_relay_ports{{state="free", {I}}}', "50x10"),
          (f'ferroturn_relay_ports{{state="in_use", {I}}}', "50x10")], []),
    ],
    "FerroturnFileDescriptorsNearLimit": [
        ([(f"process_open_fds{{{I}}}", "900x10"), (f"process_max_fds{{{I}}}", "1000x10")],
         [(f"{{{I}}}", 0.9)]),
        ([(f"process_open_fds{{{I}}}", "100x10"), (f"process_max_fds{{{I}}}", "1000x10")], []),
        ([('process_open_fds{instance="n", job="node"}', "900x10"),
          ('process_max_fds{instance="n", job="node"}', "1000x10")], []),
    ],
    "FerroturnDropsRising": [
        # 2 drops/s against 20 + 20 packets/s received: 5 %.
        ([(f'ferroturn_dropped_packets_total{{reason="bandwidth", {I}}}', "0+120x10"),
          (f'ferroturn_dropped_packets_total{{reason="malformed", {I}}}', "0+6000x10"),
          (f"turn_total_traffic_rcvp{{{I}}}", "0+1200x10"),
          (f"turn_total_traffic_peer_rcvp{{{I}}}", "0+1200x10")],
         [(f"{{{I}}}", 0.05)]),
        # Malformed datagrams alone (a scanner) do not count.
        ([(f'ferroturn_dropped_packets_total{{reason="bandwidth", {I}}}', "0x10"),
          (f'ferroturn_dropped_packets_total{{reason="malformed", {I}}}', "0+6000x10"),
          (f"turn_total_traffic_rcvp{{{I}}}", "0+1200x10"),
          (f"turn_total_traffic_peer_rcvp{{{I}}}", "0+1200x10")], []),
    ],
    "FerroturnConfigReloadFailed": [
        ([(f'ferroturn_config_reloads_total{{result="failure", {I}}}', "0 0 0 1 1 1 1 1 1 1 1")],
         [(f'{{result="failure", {I}}}', 1)]),
        ([(f'ferroturn_config_reloads_total{{result="failure", {I}}}', "0x10")], []),
    ],
    "FerroturnCertificateReloadFailed": [
        ([(f'ferroturn_certificate_reloads_total{{result="failure", {I}}}', "0 0 0 1 1 1 1 1 1 1 1")],
         [(f'{{result="failure", {I}}}', 1)]),
        ([(f'ferroturn_certificate_reloads_total{{result="failure", {I}}}', "0x10")], []),
    ],
}


def alert_unit_tests(res: Results, promtool: str, rules_doc: dict, tmp: str) -> None:
    exprs = {r["alert"]: r["expr"] for g in rules_doc["groups"] for r in g["rules"]}
    missing = sorted(set(exprs) - set(ALERT_CASES))
    res.check("rules: every alert has firing and quiet cases", not missing, f"untested: {missing}")
    tests = []
    for alert, cases in ALERT_CASES.items():
        if alert not in exprs:
            res.check(f"rules: {alert} exists", False)
            continue
        for series, want in cases:
            exp = [{"labels": labels, "value": value} for labels, value in want]
            tests.append({
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": [{"expr": exprs[alert], "eval_time": "5m", "exp_samples": exp}],
            })
    path = os.path.join(tmp, "alerts.test.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}, f, sort_keys=False)
    r = subprocess.run([promtool, "test", "rules", path], capture_output=True, text=True, timeout=60)
    res.check(f"rules: promtool test rules, {len(tests)} firing/quiet cases over {len(ALERT_CASES)} alerts",
              r.returncode == 0, (r.stdout + r.stderr).strip()[-800:])


def promtool_check(res: Results, promtool: str, label: str, path: str) -> None:
    r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, timeout=60)
    res.check(f"{label}: promtool check rules", r.returncode == 0, (r.stdout + r.stderr).strip()[-500:])


def scrape_live(binary: str, tmp: str, files: dict[str, str] | None) -> str:
    listen, tls, metrics = free_port(), free_port(), free_port()
    # Keep the relay range clear of the listening port (start-up refuses the overlap).
    base = 20000 if not 20000 <= listen <= 20015 else 21000
    conf = os.path.join(tmp, "turnserver.conf")
    with open(conf, "w") as f:
        f.write(
            "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\n"
            f"listening-port={listen}\ntls-listening-port={tls}\n"
            f"min-port={base}\nmax-port={base + 15}\n"
            "use-auth-secret\nstatic-auth-secret=metrics-check-secret-0123456789\n"
            f"prometheus\nprometheus-address=127.0.0.1\nprometheus-port={metrics}\ntotal-quota=100\n"
        )
        if files:
            f.write(f"cert={files['cert']}\npkey={files['pkey']}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERROTURN_")}
    log = open(os.path.join(tmp, "ferroturn.log"), "w")
    proc = subprocess.Popen([binary, "-c", conf], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ok, detail = stun_binding(listen, timeout=5.0)
        if not ok:
            raise RuntimeError(f"no STUN answer: {detail}: " + open(os.path.join(tmp, "ferroturn.log")).read()[-500:])
        deadline = time.monotonic() + 5
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def run(res: Results, binary: str) -> None:
    print("== alert rules and dashboard")
    promtool = shutil.which("promtool")
    rules_doc = yaml.safe_load(open(RULES))
    if promtool is None:
        res.check("promtool is installed (Debian's prometheus package)", False, "run.sh installs it")
    else:
        promtool_check(res, promtool, "plain rules file", RULES)
        with tempfile.TemporaryDirectory(prefix="ferroturn-rules-") as tmp:
            alert_unit_tests(res, promtool, rules_doc, tmp)

    chart = helm.Chart.load(CHART)
    rendered = chart.render(
        {"metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
                     "grafanaDashboard": {"enabled": True}}},
        name="turn", namespace="jitsi", is_install=True,
    )
    objs = objects(rendered)
    rule_objs = [o for o in objs if o.get("kind") == "PrometheusRule"]
    res.check(
        "chart: metrics.prometheusRule.enabled renders one PrometheusRule with the given labels",
        len(rule_objs) == 1 and rule_objs[0]["metadata"]["labels"].get("release") == "prom",
        str([o.get("kind") for o in objs]),
    )
    if rule_objs:
        spec = rule_objs[0]["spec"]
        same = rule_exprs(spec) == [e.replace('job=~".*ferroturn.*"', 'job="turn-ferroturn-metrics"')
                                    for e in rule_exprs(rules_doc)]
        res.check("chart: PrometheusRule = the plain rules file, job set to the metrics Service", same)
        if promtool is not None:
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                yaml.safe_dump(spec, f)
            promtool_check(res, promtool, "chart PrometheusRule spec", f.name)
            os.unlink(f.name)
    for label, values in [("defaults", {})]:
        kinds = [o.get("kind") for o in objects(chart.render(values, name="turn", namespace="jitsi"))]
        res.check(f"chart {label}: no PrometheusRule unless asked for", "PrometheusRule" not in kinds, str(kinds))
    dash_cms = [o for o in objs if o.get("kind") == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    dash = json.load(open(DASHBOARD))
    res.check(
        "chart: metrics.grafanaDashboard.enabled ships the dashboard JSON in a grafana_dashboard ConfigMap",
        len(dash_cms) == 1 and dash_cms[0]["metadata"]["labels"].get("grafana_dashboard") == "1"
        and json.loads(dash_cms[0]["data"]["ferroturn.json"]) == dash,
    )
    panels = dash.get("panels", [])
    res.check(
        "dashboard: every panel has a query and a unique id",
        panels and all(p.get("targets") for p in panels) and len({p["id"] for p in panels}) == len(panels),
        f"{len(panels)} panels",
    )

    used_rules = set().union(*(metric_names(e) for e in rule_exprs(rules_doc)))
    used_dash = set().union(*(metric_names(e) for e in dashboard_exprs(dash)))
    want = {"FerroturnDown", "FerroturnCertificateExpiring", "FerroturnAllocationsNearQuota",
            "FerroturnRelayPortsNearExhaustion", "FerroturnFileDescriptorsNearLimit", "FerroturnDropsRising"}
    alerts = {r["alert"] for g in rules_doc["groups"] for r in g["rules"]}
    res.check("rules: relay down, certificate, quota, relay ports, fds and drops alerts exist",
              want <= alerts, str(sorted(want - alerts)))

    with tempfile.TemporaryDirectory(prefix="ferroturn-metrics-") as tmp:
        files = self_signed(tmp)
        try:
            text = scrape_live(binary, tmp, files)
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            res.check("live server answers /metrics", False, str(e)[:500])
            return
    exported = exported_names(text)
    res.check("live server answers /metrics", bool(exported), f"{len(exported)} series names")
    if files is None:
        res.skip("certificate expiry metric", "openssl could not make a test certificate")
        exported.add("ferroturn_tls_certificate_expiry_timestamp_seconds")
    for label, used in (("alert rules", used_rules), ("dashboard", used_dash)):
        missing = sorted(n for n in used - SYNTHETIC if n not in exported)
        res.check(f"{label}: every metric used ({len(used)}) is exported by a live server",
                  not missing and len(used) > 5, f"missing: {missing}")
