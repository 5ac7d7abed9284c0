//! Reads a docker-style `.env` file: `KEY=VALUE` lines as docker compose reads them.

use std::collections::BTreeMap;

/// The variables of `text`, the last assignment of a key winning.
///
/// Understood: `#` comment lines, blank lines, an optional `export ` prefix, values in single
/// quotes (taken literally) or double quotes (`\"`, `\\`, `\n` unescaped), and a ` #` comment
/// after an unquoted value. Not understood: `${VAR}` interpolation (kept as written) and values
/// that continue over several lines.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        map.insert(key.to_string(), unquote(value.trim()));
    }
    map
}

fn unquote(v: &str) -> String {
    if let Some(rest) = v.strip_prefix('\'') {
        return rest.split('\'').next().unwrap_or("").to_string();
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        return out;
    }
    // An unquoted value ends where a ` #` comment starts.
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_string(),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_forms() {
        let m = parse(
            "# comment\n\nTURN_HOST=turn.example.org\nexport TURN_PORT=3478\n\
             TURN_CREDENTIALS=\"ab\\\"c\"\nTURN_TRANSPORT='udp,tcp'\nTURN_TTL=86400 # one day\n\
             not a line\nTURN_PORT=3479\n",
        );
        assert_eq!(m["TURN_HOST"], "turn.example.org");
        assert_eq!(m["TURN_PORT"], "3479", "last wins");
        assert_eq!(m["TURN_CREDENTIALS"], "ab\"c");
        assert_eq!(m["TURN_TRANSPORT"], "udp,tcp");
        assert_eq!(m["TURN_TTL"], "86400");
        assert_eq!(m.len(), 5);
    }
}
