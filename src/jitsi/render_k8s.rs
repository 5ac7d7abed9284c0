//! Kubernetes: the `jitsi-turn-secret` Secret shared by Prosody and the ferroturn chart, and a
//! values fragment for jitsi-helm.

use std::fmt::Write as _;

use super::plan::Plan;
use super::render_env::{custom_config_line, env_pairs, jvb_stun};

/// Name of the Secret both charts read.
pub const SECRET_NAME: &str = "jitsi-turn-secret";

/// The key of the Secret that holds the shared secret.
pub const SECRET_KEY: &str = "TURN_CREDENTIALS";

/// The Secret manifest: every `.env` key under `stringData`.
pub fn render_secret(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Shared by Prosody (jitsi-helm: prosody.extraEnvFrom) and ferroturn (key {SECRET_KEY}).\n\
         # Written by `ferroturn jitsi init` for {}. Apply with: kubectl apply -n NAMESPACE -f {SECRET_NAME}.yaml\n\
         # Keep it out of version control, or seal it (sealed-secrets, SOPS) first.",
        plan.host
    );
    let _ = writeln!(
        s,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {SECRET_NAME}\n  labels:\n    app.kubernetes.io/part-of: jitsi\ntype: Opaque\nstringData:"
    );
    for (k, v) in env_pairs(plan) {
        // Always quoted: a hex secret of only digits, or digits around one `e`, would
        // otherwise be read as a number, and ports must be strings in an env Secret.
        let _ = writeln!(s, "  {k}: {}", yaml_quoted(&v));
    }
    s
}

/// The jitsi-helm values fragment for `plan.jitsi_helm`: Prosody (and the web container, where
/// the chart allows it) read every TURN_* / STUN_* key from [`SECRET_NAME`], the videobridge uses
/// this relay's STUN, the web client keeps TURN/UDP, and the chart's own coturn stays off. Only
/// keys that release's `values.yaml` has, and no template calls except in 1.x's repeated
/// defaults, which that release renders inside its Prosody subchart.
pub fn render_helm_values(plan: &Plan) -> String {
    let chart = plan.jitsi_helm;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# jitsi-helm {chart} values for an external ferroturn relay, written by `ferroturn jitsi init`\n\
         # for {}. Merge into your values file: helm upgrade ... -f jitsi-helm-values.yaml\n\
         # The Secret {SECRET_NAME} (jitsi-turn-secret.yaml) must exist in the release's namespace.",
        plan.host
    );
    let ours = format!("    - secretRef:\n        name: {SECRET_NAME}\n");
    s.push_str("\nprosody:\n");
    match chart.default_prosody_env_from() {
        None => {
            let _ = writeln!(
                s,
                "  # Appended after the chart's own env sources, so these TURN_* keys win.\n  extraEnvFrom:"
            );
        }
        Some(defaults) => {
            let _ = writeln!(
                s,
                "  # Helm replaces a list instead of merging it: jitsi-helm {chart}'s default entries are\n  \
                 # repeated first (its Prosody subchart renders them), then {SECRET_NAME}, whose\n  \
                 # TURN_* keys win over the same keys from the chart's own ConfigMap.\n  extraEnvFrom:"
            );
            for d in defaults {
                let _ = writeln!(
                    s,
                    "    - {}:\n        name: '{{{{ include \"prosody.fullname\" . }}}}{}'",
                    d.kind, d.suffix
                );
            }
        }
    }
    s.push_str(&ours);
    if chart.has_web_extra_env_from() {
        let _ = write!(
            s,
            "\nweb:\n  # The web container reads P2P_STUN_SERVERS from it for one-to-one calls.\n  extraEnvFrom:\n{ours}"
        );
    }
    if let Some(line) = custom_config_line(plan) {
        if chart.has_custom_config_js() {
            if !chart.has_web_extra_env_from() {
                s.push_str("\nweb:\n");
            }
            let _ = writeln!(
                s,
                "  custom:\n    configs:\n      # Jitsi drops TURN/UDP unless told otherwise; this relay offers UDP.\n      _custom_config_js: |\n        {line}"
            );
        } else {
            let _ = writeln!(
                s,
                "\n# jitsi-helm {chart} has no web.custom.configs: add `{line}` to the web\n\
                 # container's config.js yourself, or Jitsi drops this relay's TURN/UDP."
            );
        }
    }
    if let Some(stun) = jvb_stun(plan) {
        let _ = writeln!(
            s,
            "\njvb:\n  # The videobridge discovers its public address through this relay's STUN.\n  stunServers: {}",
            yaml_quoted(&stun)
        );
    }
    if chart.has_coturn() {
        let _ = writeln!(
            s,
            "\n# The chart's bundled coturn stays off: ferroturn is the relay.\ncoturn:\n  enabled: false"
        );
    }
    let _ = writeln!(
        s,
        "\n# With ferroturn's chart as a dependency of an umbrella chart around jitsi-helm\n\
         # (alias turn, condition: turn.enabled), its values read the same Secret:\n\
         #   turn:\n#     enabled: true\n#     auth:\n#       secret:\n\
         #         name: {SECRET_NAME}\n#         key: {SECRET_KEY}"
    );
    s
}

/// A YAML double-quoted scalar. A JSON string is one, and the JSON escaper already covers
/// quotes, backslashes and every control character.
pub fn yaml_quoted(v: &str) -> String {
    crate::http::json::string(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitsi::plan::tests::sample;
    use serde_yaml::Value;

    #[test]
    fn secret_parses_with_a_yaml_parser() {
        let plan = sample();
        let doc: Value = serde_yaml::from_str(&render_secret(&plan)).unwrap();
        assert_eq!(doc["kind"].as_str(), Some("Secret"));
        assert_eq!(doc["metadata"]["name"].as_str(), Some(SECRET_NAME));
        let data = &doc["stringData"];
        assert_eq!(data[SECRET_KEY].as_str(), Some(plan.secret.as_str()));
        assert_eq!(data["TURN_PORT"].as_str(), Some("3478"));
        assert_eq!(data["TURN_TRANSPORT"].as_str(), Some("udp,tcp"));
        assert_eq!(data["TURNS_PORT"].as_str(), Some("5349"));
    }

    #[test]
    fn numeric_looking_secrets_stay_strings() {
        let mut plan = sample();
        for secret in [
            "1".repeat(64),
            format!("{}e{}", "1".repeat(30), "2".repeat(33)),
        ] {
            plan.secret = secret.clone();
            let doc: Value = serde_yaml::from_str(&render_secret(&plan)).unwrap();
            assert_eq!(
                doc["stringData"][SECRET_KEY].as_str(),
                Some(secret.as_str())
            );
        }
    }

    /// jitsi-helm 3.4.0's documented keys: `path kind` lines.
    const V3_KEYS: &str = include_str!("jitsi-helm-3.4.0-keys.txt");

    /// Every leaf path of `v` that jitsi-helm 3.4.0 does not document, and every list that
    /// is not a list of `envFrom` sources naming a Secret or ConfigMap.
    fn undocumented(v: &Value, path: &str, out: &mut Vec<String>) {
        let known: Vec<(&str, &str)> = V3_KEYS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .collect();
        // Under a free-form mapping (extraEnvs: {}) any key is the user's own.
        if known
            .iter()
            .any(|(k, kind)| *kind == "map" && path.starts_with(&format!("{k}.")))
        {
            return;
        }
        match v {
            Value::Mapping(m) => {
                for (k, x) in m {
                    let k = k.as_str().unwrap_or("?");
                    let p = if path.is_empty() {
                        k.to_string()
                    } else {
                        format!("{path}.{k}")
                    };
                    undocumented(x, &p, out);
                }
            }
            Value::Sequence(items) => {
                if !known.contains(&(path, "list")) {
                    out.push(format!("{path} (list)"));
                }
                for item in items {
                    let ok = ["secretRef", "configMapRef"].iter().any(|r| {
                        item[*r]["name"].as_str().is_some_and(|n| !n.is_empty())
                            && item.as_mapping().is_some_and(|m| m.len() == 1)
                    });
                    if !ok {
                        out.push(format!("{path}: {item:?} is not an envFrom source"));
                    }
                }
            }
            _ => {
                if !known.contains(&(path, "scalar")) {
                    out.push(path.to_string());
                }
            }
        }
    }

    #[test]
    fn current_helm_values_use_only_documented_keys_and_no_templates() {
        for plan in [sample(), {
            let mut p = sample();
            p.udp = false;
            p.tls = None;
            p
        }] {
            let text = render_helm_values(&plan);
            assert!(!text.contains("{{"), "{text}");
            let doc: Value = serde_yaml::from_str(&text).unwrap();
            let mut bad = Vec::new();
            undocumented(&doc, "", &mut bad);
            assert_eq!(bad, Vec::<String>::new(), "{text}");
        }
        let doc: Value = serde_yaml::from_str(&render_helm_values(&sample())).unwrap();
        for component in ["prosody", "web"] {
            let list = doc[component]["extraEnvFrom"].as_sequence().unwrap();
            assert_eq!(list.len(), 1, "{component}");
            assert_eq!(list[0]["secretRef"]["name"].as_str(), Some(SECRET_NAME));
        }
        assert_eq!(
            doc["jvb"]["stunServers"].as_str(),
            Some("turn.example.org:3478")
        );
        assert_eq!(
            doc["web"]["custom"]["configs"]["_custom_config_js"].as_str(),
            Some("config.useTurnUdp = true;\n")
        );
        assert_eq!(doc["coturn"]["enabled"].as_bool(), Some(false));
    }

    #[test]
    fn the_key_checker_catches_what_v3_lacks() {
        let doc: Value = serde_yaml::from_str(
            "turn: {enabled: true}\nprosody: {extraEnvFrom: [{secretRef: {name: a}}, {name: b}], extraEnvs: {ANY: x}}\n",
        )
        .unwrap();
        let mut bad = Vec::new();
        undocumented(&doc, "", &mut bad);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(bad[0], "turn.enabled");
        assert!(bad[1].contains("not an envFrom source"), "{bad:?}");
    }

    #[test]
    fn v1_values_repeat_that_releases_default_list() {
        let mut plan = sample();
        for (version, names) in [
            (
                "1.5.2",
                vec![
                    "-jibri",
                    "-jicofo",
                    "-jigasi",
                    "-transcriber",
                    "-jvb",
                    "-common",
                ],
            ),
            (
                "1.4.0",
                vec!["-jibri", "-jicofo", "-jigasi", "-jvb", "-common"],
            ),
            ("1.3.8", vec!["-jicofo", "-jvb", "-common"]),
        ] {
            plan.jitsi_helm = version.parse().unwrap();
            let text = render_helm_values(&plan);
            let doc: Value = serde_yaml::from_str(&text).unwrap();
            let list = doc["prosody"]["extraEnvFrom"].as_sequence().unwrap();
            assert_eq!(list.len(), names.len() + 1, "{version}: {text}");
            for (entry, suffix) in list.iter().zip(&names) {
                let r = if *suffix == "-common" {
                    "configMapRef"
                } else {
                    "secretRef"
                };
                assert_eq!(
                    entry[r]["name"].as_str(),
                    Some(format!("{{{{ include \"prosody.fullname\" . }}}}{suffix}").as_str()),
                    "{version}"
                );
            }
            assert_eq!(
                list[names.len()]["secretRef"]["name"].as_str(),
                Some(SECRET_NAME)
            );
            // 1.x has neither a bundled coturn nor web.extraEnvFrom.
            assert!(doc.get("coturn").is_none(), "{version}");
            assert!(doc["web"].get("extraEnvFrom").is_none(), "{version}");
            assert_eq!(
                doc["web"]["custom"]["configs"]["_custom_config_js"].is_string(),
                version != "1.3.8",
                "{version}"
            );
            if version == "1.3.8" {
                assert!(text.contains("config.useTurnUdp = true;"), "{text}");
            }
        }
    }
}
