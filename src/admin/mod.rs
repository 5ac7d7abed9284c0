//! `ferroturn admin`: a command-line client for the admin API.

mod table;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use crate::config;

const USAGE: &str = "\
Usage: ferroturn admin [-c FILE] [--address HOST:PORT] [--token TOKEN] [--json] <command>

Talks to the admin API of a running ferroturn (enabled by admin-token in turnserver.conf).

Commands:
  status                 allocations, TCP connections, draining
  sessions               list live sessions
  end <ID>               end one session
  revoke-user <USER>     refuse a user from now on and end their sessions
  revoke-secret <SECRET> refuse a TURN REST secret from now on and end its sessions
  drain                  stop accepting new allocations; live ones continue

Options:
  -c FILE                read admin-address, admin-port and admin-token from this
                         turnserver.conf (FERROTURN_ADMIN_* override it, as for the server)
  --address HOST:PORT    admin API address [default: from -c, else 127.0.0.1:9642]
  --token TOKEN          bearer token [default: from -c, else $FERROTURN_ADMIN_TOKEN]
  --json                 print the API's JSON instead of a table
";

/// Address and token from the relay's own turnserver.conf, with `FERROTURN_ADMIN_*` on top as
/// the server layers them. Only the admin options are read: the rest of the file (a secret
/// that lives in the unit's environment file, say) does not have to be complete here.
fn from_config(file: &str) -> Result<(SocketAddr, Option<String>), String> {
    let text = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let parsed = config::conf_file::parse(&String::from_utf8_lossy(&text), file);
    let mut address = None;
    let mut port = None;
    let mut token = None;
    for e in &parsed.entries {
        let value = e.value.as_deref().map(str::trim);
        match e.key.trim_start_matches('-') {
            "admin-address" => address = value.map(str::to_string),
            "admin-port" => port = value.map(str::to_string),
            "admin-token" => token = value.map(str::to_string),
            _ => {}
        }
    }
    for (var, slot) in [
        ("FERROTURN_ADMIN_ADDRESS", &mut address),
        ("FERROTURN_ADMIN_PORT", &mut port),
        ("FERROTURN_ADMIN_TOKEN", &mut token),
    ] {
        if let Ok(v) = std::env::var(var) {
            *slot = Some(v.trim().to_string());
        }
    }
    let ip: IpAddr = match address {
        Some(a) => a
            .parse()
            .map_err(|_| format!("{file}: admin-address {a:?} is not an IP address"))?,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    // An API bound to every address is reached on loopback.
    let ip = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let port: u16 = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("{file}: admin-port {p:?} is not a port number"))?,
        None => DEFAULT_ADMIN_PORT,
    };
    Ok((SocketAddr::new(ip, port), token))
}

/// The server's default `admin-port`.
const DEFAULT_ADMIN_PORT: u16 = 9642;

/// Runs the subcommand with the arguments after `admin`.
pub fn main(args: &[String]) -> ExitCode {
    let mut address: Option<String> = None;
    let mut token: Option<String> = None;
    let mut file: Option<String> = None;
    let mut json = false;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--address" => address = Some(it.next().cloned().unwrap_or_default()),
            "--token" => token = it.next().cloned(),
            "-c" | "--config" => file = it.next().cloned(),
            "--json" => json = true,
            _ => rest.push(arg.clone()),
        }
    }
    let mut configured: Option<(SocketAddr, Option<String>)> = None;
    if let Some(file) = &file {
        match from_config(file) {
            Ok(found) => configured = Some(found),
            Err(e) => {
                eprintln!("ferroturn admin: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let addr = match &address {
        Some(a) => match a.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                eprintln!("ferroturn admin: --address must be IP:PORT, got {a:?}");
                return ExitCode::from(2);
            }
        },
        None => configured.as_ref().map_or(
            SocketAddr::from(([127, 0, 0, 1], DEFAULT_ADMIN_PORT)),
            |(a, _)| *a,
        ),
    };
    let token = token
        .or_else(|| configured.as_ref().and_then(|(_, t)| t.clone()))
        .or_else(|| std::env::var("FERROTURN_ADMIN_TOKEN").ok());
    let Some(token) = token else {
        let hint = match &file {
            Some(f) => format!("{f} sets no admin-token (the admin API is off)"),
            None => "pass -c FILE or --token, or set FERROTURN_ADMIN_TOKEN".to_string(),
        };
        eprintln!("ferroturn admin: no token: {hint}");
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
            if json {
                println!("{text}");
            } else {
                print!("{}", table::render(words[0], &text));
            }
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
