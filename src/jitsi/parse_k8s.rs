//! Reads the TURN keys out of a Kubernetes Secret manifest.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize as _;
use serde_yaml::Value;

use super::render_k8s::{SECRET_KEY, SECRET_NAME};

/// Why a manifest gave no Secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum K8sError {
    /// Not YAML.
    #[error("not valid YAML: {0}")]
    Yaml(String),
    /// No `kind: Secret` document with TURN keys.
    #[error("no Secret with a {SECRET_KEY} key found")]
    NoSecret,
}

/// The keys of the Secret in `text` (which may hold several `---` documents): the one named
/// `jitsi-turn-secret`, else the first Secret with a `TURN_CREDENTIALS` key. `stringData`
/// wins over base64 `data`, as the API server merges them. Numbers and booleans are read as
/// their text.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, K8sError> {
    let mut secrets = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| K8sError::Yaml(e.to_string()))?;
        if value["kind"].as_str() == Some("Secret") {
            let name = value["metadata"]["name"].as_str().unwrap_or("").to_string();
            secrets.push((name, keys(&value)));
        }
    }
    let pick = secrets
        .iter()
        .position(|(n, _)| n == SECRET_NAME)
        .or_else(|| secrets.iter().position(|(_, k)| k.contains_key(SECRET_KEY)))
        .ok_or(K8sError::NoSecret)?;
    Ok(secrets.swap_remove(pick).1)
}

fn keys(secret: &Value) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    if let Some(data) = secret["data"].as_mapping() {
        for (k, v) in data {
            if let (Some(k), Some(v)) = (k.as_str(), scalar(v)) {
                // A value that is not valid base64 is kept as written so check can show it.
                let decoded = STANDARD
                    .decode(v.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or(v);
                map.insert(k.to_string(), decoded);
            }
        }
    }
    if let Some(data) = secret["stringData"].as_mapping() {
        for (k, v) in data {
            if let (Some(k), Some(v)) = (k.as_str(), scalar(v)) {
                map.insert(k.to_string(), v);
            }
        }
    }
    map
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_and_base64_data() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n\
                    apiVersion: v1\nkind: Secret\nmetadata:\n  name: jitsi-turn-secret\n\
                    data:\n  TURN_CREDENTIALS: c2VjcmV0\n  TURN_HOST: aG9zdA==\n\
                    stringData:\n  TURN_PORT: 3478\n  TURN_HOST: turn.example.org\n";
        let m = parse(text).unwrap();
        assert_eq!(m["TURN_CREDENTIALS"], "secret");
        assert_eq!(m["TURN_PORT"], "3478");
        assert_eq!(m["TURN_HOST"], "turn.example.org", "stringData wins");
    }

    #[test]
    fn errors() {
        assert_eq!(parse("kind: ConfigMap\n"), Err(K8sError::NoSecret));
        assert!(matches!(parse("a: [\n"), Err(K8sError::Yaml(_))));
    }
}
