//! A blocking HTTP/1.1 client just big enough for the metrics and admin listeners.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status, lower-cased headers, body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
}

/// Connects, retrying for a while: the server answers STUN (which is what `TestServer`
/// waits for) a moment before its HTTP listeners are bound.
fn connect(addr: SocketAddr) -> TcpStream {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(s) => return s,
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8(raw).expect("response is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status = parts
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap_or_else(|| panic!("header {l:?}"));
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_string(),
    };
    if let Some(len) = reply.header("content-length") {
        assert_eq!(
            len.parse::<usize>().ok(),
            Some(reply.body.len()),
            "Content-Length of {method} {path}"
        );
    }
    reply
}

/// `GET path` without credentials.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, None, "")
}

/// `GET /credentials?service=turn&username=USER&ttl=600` on the credential endpoint at `api`
/// with the bearer `token`; the answer must be 200, its JSON body is returned.
pub async fn fetch_credentials(
    api: SocketAddr,
    token: &'static str,
    user: &'static str,
) -> super::json::Json {
    let reply = tokio::task::spawn_blocking(move || {
        let path = format!("/credentials?service=turn&username={user}&ttl=600");
        request(api, "GET", &path, Some(token), "")
    })
    .await
    .expect("request task");
    assert_eq!(reply.status, 200, "{}", reply.body);
    super::json::Json::parse(&reply.body).expect("JSON")
}
