"""`ferroturn jitsi init`'s jitsi-helm values through Helm's own engine (helm-python-sdk).

jitsi-helm itself is not in any package registry the tests may use, so the values are
rendered through two small stand-in charts written here, which consume the keys the way
jitsi-helm's templates do (facts read from jitsi-helm 3.4.0 and 1.5.2, see
src/jitsi/jitsi_helm.rs): each `extraEnvFrom` entry goes through `tpl` in the chart that owns
it, after the chart's own env sources; in 1.x Prosody is a subchart that defines
`prosody.fullname` and lists its own Secrets by default. The keys themselves are checked
against jitsi-helm 3.4.0's documented list by the unit tests in src/jitsi/render_k8s.rs.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import yaml

import helm_python as helm
from lib import Results

V1_DEFAULT_SUFFIXES = ["-jibri", "-jicofo", "-jigasi", "-transcriber", "-jvb", "-common"]

def pod(component: str, values: str, env: str = "", own_source: bool = True, extra_env_from: bool = True) -> str:
    """A Pod for `component`: `env` lines, then envFrom with the chart's own ConfigMap (when
    `own_source`) and every entry of `.Values.<values>extraEnvFrom` through tpl."""
    lines = [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  name: {{ .Release.Name }}-%s" % component,
        "spec:",
        "  containers:",
        "    - name: %s" % component,
        "      image: x",
        "      env:",
        "        - {name: COMPONENT, value: %s}" % component,
    ]
    lines += ["        " + e for e in env.splitlines()]
    lines.append("      envFrom:")
    if own_source:
        lines += ["        - configMapRef:", "            name: {{ .Release.Name }}-%s-own" % component]
    if extra_env_from:
        lines += [
            "        {{- range .Values.%sextraEnvFrom }}" % values,
            "        - {{ tpl (toYaml .) $ | nindent 10 | trim }}",
            "        {{- end }}",
        ]
    return "\n".join(lines) + "\n"


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def standin_v3(root: str) -> str:
    chart = os.path.join(root, "standin-v3")
    write(os.path.join(chart, "Chart.yaml"), "apiVersion: v2\nname: standin-v3\nversion: 3.4.0\n")
    write(
        os.path.join(chart, "values.yaml"),
        "prosody: {extraEnvFrom: []}\nweb: {extraEnvFrom: [], custom: {configs: {_custom_config_js: ''}}}\n"
        "jvb: {stunServers: 'meet-jit-si-turnrelay.jitsi.net:443'}\ncoturn: {enabled: true}\n",
    )
    write(os.path.join(chart, "templates", "prosody.yaml"), pod("prosody", "prosody."))
    write(
        os.path.join(chart, "templates", "web.yaml"),
        pod("web", "web.", "- name: CUSTOM_CONFIG_JS\n  value: {{ .Values.web.custom.configs._custom_config_js | quote }}"),
    )
    write(
        os.path.join(chart, "templates", "jvb.yaml"),
        pod(
            "jvb",
            "jvb.",
            "- name: JVB_STUN_SERVERS\n  value: {{ .Values.jvb.stunServers | quote }}\n"
            "- name: COTURN\n  value: {{ .Values.coturn.enabled | quote }}",
            extra_env_from=False,
        ),
    )
    return chart


def standin_v1(root: str) -> str:
    chart = os.path.join(root, "standin-v1")
    write(
        os.path.join(chart, "Chart.yaml"),
        "apiVersion: v2\nname: standin-v1\nversion: 1.5.2\ndependencies:\n  - name: prosody\n    version: 1.5.2\n",
    )
    write(os.path.join(chart, "values.yaml"), "{}\n")
    sub = os.path.join(chart, "charts", "prosody")
    write(os.path.join(sub, "Chart.yaml"), "apiVersion: v2\nname: prosody\nversion: 1.5.2\n")
    write(
        os.path.join(sub, "templates", "_helpers.tpl"),
        '{{- define "prosody.fullname" -}}{{ .Release.Name }}-prosody{{- end -}}\n',
    )
    defaults = [
        {("configMapRef" if s == "-common" else "secretRef"): {"name": '{{ include "prosody.fullname" . }}' + s}}
        for s in V1_DEFAULT_SUFFIXES
    ]
    write(os.path.join(sub, "values.yaml"), yaml.safe_dump({"extraEnvFrom": defaults}))
    # 1.x lists the chart's own sources in the default extraEnvFrom itself.
    write(os.path.join(sub, "templates", "statefulset.yaml"), pod("prosody", "", own_source=False))
    return chart


def env_from(objs: list[dict], name: str) -> list[dict]:
    for o in objs:
        if o.get("metadata", {}).get("name") == name:
            return o["spec"]["containers"][0].get("envFrom") or []
    return []


def env(objs: list[dict], name: str) -> dict[str, str]:
    for o in objs:
        if o.get("metadata", {}).get("name") == name:
            return {e["name"]: e.get("value") for e in o["spec"]["containers"][0].get("env") or []}
    return {}


def render(chart: str, values: dict) -> list[dict]:
    out = helm.Chart.load(chart).render(values, name="jitsi", namespace="jitsi")
    return [d for text in out.values() for d in yaml.safe_load_all(text) if d]


def init_values(binary: str, tmp: str, *extra: str) -> dict:
    out = os.path.join(tmp, "init" + "-".join(extra))
    subprocess.run(
        [binary, "jitsi", "init", "--host", "turn.example.org", "--external-ip", "203.0.113.10", "--out", out, *extra],
        check=True,
        capture_output=True,
        timeout=30,
    )
    with open(os.path.join(out, "jitsi-helm-values.yaml")) as f:
        return yaml.safe_load(f)


def run(res: Results, binary: str) -> None:
    print("== jitsi-helm values from `ferroturn jitsi init` (Helm %s, stand-in charts)" % helm.helm_sdk_version())
    turn_secret = {"secretRef": {"name": "jitsi-turn-secret"}}
    with tempfile.TemporaryDirectory(prefix="ferroturn-jitsi-helm-") as tmp:
        v3 = standin_v3(tmp)
        values3 = init_values(binary, tmp)
        try:
            objs = render(v3, values3)
        except helm.HelmError as e:
            objs = []
            res.check("jitsi-helm 3 values: render with Helm's engine", False, str(e)[:300])
        if objs:
            res.check(
                "jitsi-helm 3 values: prosody envFrom = chart's own, then jitsi-turn-secret",
                env_from(objs, "jitsi-prosody") == [{"configMapRef": {"name": "jitsi-prosody-own"}}, turn_secret],
                str(env_from(objs, "jitsi-prosody")),
            )
            res.check(
                "jitsi-helm 3 values: web envFrom gets jitsi-turn-secret too",
                env_from(objs, "jitsi-web")[1:] == [turn_secret],
                str(env_from(objs, "jitsi-web")),
            )
            jvb = env(objs, "jitsi-jvb")
            res.check(
                "jitsi-helm 3 values: jvb STUN is the relay, the bundled coturn is off",
                jvb.get("JVB_STUN_SERVERS") == "turn.example.org:3478" and jvb.get("COTURN") == "false",
                str(jvb),
            )
            res.check(
                "jitsi-helm 3 values: web custom config keeps TURN/UDP",
                "config.useTurnUdp = true;" in (env(objs, "jitsi-web").get("CUSTOM_CONFIG_JS") or ""),
            )
        # What init used to write: a template call the top chart cannot resolve.
        old = {"prosody": {"extraEnvFrom": [{"secretRef": {"name": '{{ include "prosody.fullname" . }}-jicofo'}}, turn_secret]}}
        try:
            render(v3, old)
            res.check("jitsi-helm 3: the old prosody.fullname values fail to render", False, "rendered")
        except helm.HelmError as e:
            res.check("jitsi-helm 3: the old prosody.fullname values fail to render", "prosody.fullname" in str(e), str(e)[:200])

        v1 = standin_v1(tmp)
        values = init_values(binary, tmp, "--jitsi-helm", "1.5.2")
        try:
            objs = render(v1, values)
        except helm.HelmError as e:
            objs = []
            res.check("jitsi-helm 1.5.2 values: render in the Prosody subchart", False, str(e)[:300])
        if objs:
            got = env_from(objs, "jitsi-prosody")
            want = [
                {("configMapRef" if s == "-common" else "secretRef"): {"name": "jitsi-prosody" + s}}
                for s in V1_DEFAULT_SUFFIXES
            ] + [turn_secret]
            res.check("jitsi-helm 1.5.2 values: the chart's six defaults kept, then jitsi-turn-secret", got == want, str(got))
        # The values for 3.x would replace that list and drop the chart's own Secrets.
        dropped = env_from(render(v1, values3), "jitsi-prosody")
        res.check("jitsi-helm 1.5.2: the 3.x values would drop its defaults", dropped == [turn_secret], str(dropped))
