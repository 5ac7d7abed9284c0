//! JSON for the control plane is written by serde_json; this module keeps the one helper other
//! modules share: a string literal on its own (the `jitsi` renderers quote YAML and pretty JSON
//! with it).

/// A JSON string literal for `s`, with every quote, backslash and control character escaped.
pub fn string(s: &str) -> String {
    // Display of a Value cannot fail, unlike serde_json::to_string's signature suggests.
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(string("tab\there\r"), "\"tab\\there\\r\"");
        assert_eq!(string("ünï"), "\"ünï\"");
    }
}
