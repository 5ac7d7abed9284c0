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

/// The jitsi-helm values fragment.
pub fn render_helm_values(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# jitsi-helm values for an external ferroturn relay, written by `ferroturn jitsi init`\n\
         # for {}. Merge into your values file: helm upgrade ... -f jitsi-helm-values.yaml",
        plan.host
    );
    let _ = writeln!(
        s,
        "prosody:\n  \
         # Helm replaces a list instead of merging it: overriding extraEnvFrom drops the chart's\n  \
         # own entries, and Prosody loses the jicofo/jvb credentials. So the chart's defaults are\n  \
         # listed again first; compare with `helm show values jitsi/jitsi-meet` for your chart\n  \
         # version and copy any further default entries here too. {SECRET_NAME} comes last so its\n  \
         # TURN_* keys win over the same keys from the chart's own ConfigMap.\n  \
         extraEnvFrom:\n    \
         - secretRef:\n        name: '{{{{ include \"prosody.fullname\" . }}}}-jicofo'\n    \
         - secretRef:\n        name: '{{{{ include \"prosody.fullname\" . }}}}-jvb'\n    \
         - configMapRef:\n        name: '{{{{ include \"prosody.fullname\" . }}}}-common'\n    \
         - secretRef:\n        name: {SECRET_NAME}"
    );
    if let Some(stun) = jvb_stun(plan) {
        let _ = writeln!(
            s,
            "\njvb:\n  # The videobridge discovers its public address through this relay's STUN.\n  stunServers: {}",
            yaml_quoted(&stun)
        );
    }
    if let Some(line) = custom_config_line(plan) {
        let _ = writeln!(
            s,
            "\nweb:\n  custom:\n    configs:\n      # Jitsi drops TURN/UDP unless told otherwise; this relay offers UDP.\n      _custom_config_js: |\n        {line}"
        );
    }
    let _ = writeln!(
        s,
        "\n# The chart's bundled coturn stays off: ferroturn is the relay.\ncoturn:\n  enabled: false"
    );
    let _ = writeln!(
        s,
        "\n# The ferroturn chart as a dependency (condition: turn.enabled) reads its\n\
         # static-auth-secret from the same Secret, so both sides always agree.\n\
         turn:\n  enabled: true\n  auth:\n    secret:\n      name: {SECRET_NAME}\n      key: {SECRET_KEY}"
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

    #[test]
    fn helm_values_parse_and_keep_the_charts_own_env_sources() {
        let doc: Value = serde_yaml::from_str(&render_helm_values(&sample())).unwrap();
        let list = doc["prosody"]["extraEnvFrom"].as_sequence().unwrap();
        assert_eq!(list.len(), 4);
        assert!(list[0]["secretRef"]["name"]
            .as_str()
            .unwrap()
            .ends_with("-jicofo"));
        assert!(list[2]["configMapRef"]["name"]
            .as_str()
            .unwrap()
            .ends_with("-common"));
        assert_eq!(list[3]["secretRef"]["name"].as_str(), Some(SECRET_NAME));
        assert_eq!(
            doc["jvb"]["stunServers"].as_str(),
            Some("turn.example.org:3478")
        );
        assert_eq!(
            doc["web"]["custom"]["configs"]["_custom_config_js"].as_str(),
            Some("config.useTurnUdp = true;\n")
        );
        assert_eq!(
            doc["turn"]["auth"]["secret"]["key"].as_str(),
            Some(SECRET_KEY)
        );
        assert_eq!(doc["coturn"]["enabled"].as_bool(), Some(false));
    }
}
