//! The admin client's default output: the API's JSON as aligned text for a person at a
//! terminal (`--json` prints the JSON as it came).

use serde_json::Value;

/// Columns of `sessions`: (heading, field).
const SESSION_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("USERNAME", "username"),
    ("TRANSPORT", "transport"),
    ("CLIENT", "client"),
    ("RELAYED", "relayed"),
    ("AGE_S", "age_seconds"),
    ("EXPIRES_S", "expires_in_seconds"),
    ("BYTES_TO_PEERS", "bytes_to_peers"),
    ("BYTES_TO_CLIENT", "bytes_to_client"),
];

/// `body` (the API's answer to `command`) as text; text that is not JSON is returned as is.
pub(crate) fn render(command: &str, body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return format!("{}\n", body.trim_end());
    };
    match (&value, command) {
        (Value::Array(rows), "sessions") => sessions(rows),
        (Value::Object(map), _) => {
            let rows: Vec<Vec<String>> =
                map.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect();
            aligned(&rows)
        }
        _ => format!("{value}\n"),
    }
}

fn sessions(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "no live sessions\n".to_string();
    }
    let mut table = vec![SESSION_COLUMNS
        .iter()
        .map(|(h, _)| h.to_string())
        .collect::<Vec<_>>()];
    for row in rows {
        table.push(
            SESSION_COLUMNS
                .iter()
                .map(|(_, f)| {
                    let text = row.get(*f).map_or_else(|| "-".to_string(), cell);
                    // A dual allocation shows both relayed addresses in the one column.
                    match row.get("additional_relayed").and_then(Value::as_str) {
                        Some(v6) if *f == "relayed" => format!("{text},{v6}"),
                        _ => text,
                    }
                })
                .collect(),
        );
    }
    let mut out = aligned(&table);
    out.push_str(&format!("{} session(s)\n", rows.len()));
    out
}

/// A value as a table cell: strings without quotes, null as "-".
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// Left-aligned columns separated by two spaces; no trailing spaces.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, text) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(text);
            } else {
                line.push_str(&format!("{text:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_key_value_lines() {
        let t = render(
            "status",
            r#"{"allocations":2,"tcp_connections":0,"draining":false,"ready":true}"#,
        );
        assert_eq!(
            t,
            // serde_json's map orders keys by name.
            "allocations      2\ndraining         false\nready            true\ntcp_connections  0\n"
        );
    }

    #[test]
    fn sessions_are_a_table_with_a_count() {
        let t = render(
            "sessions",
            r#"[{"id":7,"username":"1:alice","transport":"udp","client":"127.0.0.1:5000","relayed":"127.0.0.1:40000","age_seconds":3,"expires_in_seconds":597,"bytes_to_peers":10,"bytes_to_client":12,"permissions":[]}]"#,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID  USERNAME  TRANSPORT"), "{t}");
        assert!(lines[1].starts_with("7   1:alice   udp"), "{t}");
        assert!(lines[1].ends_with("10              12"), "{t}");
        assert_eq!(lines[2], "1 session(s)");
        assert_eq!(render("sessions", "[]"), "no live sessions\n");
    }

    #[test]
    fn a_dual_session_shows_both_relayed_addresses() {
        let t = render(
            "sessions",
            r#"[{"id":8,"username":"u","transport":"udp","client":"127.0.0.1:5000","relayed":"127.0.0.1:40000","additional_relayed":"[::1]:40002","age_seconds":1,"expires_in_seconds":9,"bytes_to_peers":0,"bytes_to_client":0}]"#,
        );
        assert!(t.contains("127.0.0.1:40000,[::1]:40002"), "{t}");
    }

    #[test]
    fn non_json_passes_through() {
        assert_eq!(render("status", "oops"), "oops\n");
    }
}
