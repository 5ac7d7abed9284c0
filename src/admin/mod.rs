//! `ferroturn admin`: a command-line client for the admin API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
Usage: ferroturn admin [--address HOST:PORT] [--token TOKEN] <command>

Talks to the admin API of a running ferroturn (enabled by admin-token in turnserver.conf).

Commands:
  status                 allocations, TCP connections, draining
  sessions               list live sessions (JSON)
  end <ID>               end one session
  revoke-user <USER>     refuse a user from now on and end their sessions
  revoke-secret <SECRET> refuse a TURN REST secret from now on and end its sessions
  drain                  stop accepting new allocations; live ones continue

Options:
  --address HOST:PORT    admin API address [default: 127.0.0.1:9642]
  --token TOKEN          bearer token [default: $FERROTURN_ADMIN_TOKEN]
";

/// Runs the subcommand with the arguments after `admin`.
pub fn main(args: &[String]) -> ExitCode {
    let mut address = "127.0.0.1:9642".to_string();
    let mut token = std::env::var("FERROTURN_ADMIN_TOKEN").ok();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--address" => address = it.next().cloned().unwrap_or_default(),
            "--token" => token = it.next().cloned(),
            _ => rest.push(arg.clone()),
        }
    }
    let Ok(addr) = address.parse::<SocketAddr>() else {
        eprintln!("ferroturn admin: --address must be IP:PORT, got {address:?}");
        return ExitCode::from(2);
    };
    let Some(token) = token else {
        eprintln!("ferroturn admin: no token: pass --token or set FERROTURN_ADMIN_TOKEN");
        return ExitCode::from(2);
    };
    let words: Vec<&str> = rest.iter().map(String::as_str).collect();
    let (method, path, body) = match words.as_slice() {
        ["status"] => ("GET", "/admin/status".to_string(), String::new()),
        ["sessions"] => ("GET", "/admin/sessions".to_string(), String::new()),
        ["end", id] => ("DELETE", format!("/admin/sessions/{id}"), String::new()),
        ["revoke-user", user] => (
            "POST",
            format!("/admin/users/{}/revoke", encode(user)),
            String::new(),
        ),
        ["revoke-secret", secret] => (
            "POST",
            "/admin/secrets/revoke".to_string(),
            secret.to_string(),
        ),
        ["drain"] => ("POST", "/admin/drain".to_string(), String::new()),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match request(addr, method, &path, &token, &body) {
        Ok((status, text)) => {
            println!("{text}");
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                eprintln!("ferroturn admin: HTTP {status}");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("ferroturn admin: cannot reach {addr}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Sends one request and returns the status and body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// A path segment with everything but RFC 3986's unreserved characters percent-encoded, so a
/// REST user part (`@`, `/`, `:` ...) stays one segment.
fn encode(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_keep_unreserved_characters_only() {
        assert_eq!(super::encode("dave@example.org"), "dave%40example.org");
        assert_eq!(super::encode("a/b c+d~e_f-g.h"), "a%2Fb%20c%2Bd~e_f-g.h");
        assert_eq!(super::encode("é"), "%C3%A9");
    }
}
