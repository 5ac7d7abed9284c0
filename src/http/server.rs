//! A deliberately small HTTP/1.1 server for the control plane (metrics, health, admin): one
//! request per connection, bounded sizes and timeouts, a thread per connection up to a cap.
//! Scrapes and admin calls are rare, so simplicity beats throughput here.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_BODY_BYTES: usize = 64 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONCURRENT: usize = 32;

/// A parsed request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method, upper-case.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Query string after `?`, undecoded.
    pub query: String,
    /// The bearer token of an `Authorization: Bearer` header.
    pub bearer: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// Whether the request carries exactly `token` as its bearer token (compared in constant
    /// time).
    pub fn has_bearer(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.bearer
            .as_deref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(token.as_bytes())))
    }

    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: String) -> Self {
        Response {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
        }
    }
}

/// Handles one request.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A running HTTP listener.
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on `addr` and serves `handler` on a background thread.
    pub fn start(addr: SocketAddr, name: &str, handler: Handler) -> io::Result<HttpServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let active = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::Builder::new()
            .name(format!("ferroturn-{name}"))
            .spawn(move || accept_loop(listener, handler, flag, active))?;
        Ok(HttpServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Handler,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONCURRENT {
                    let _ = respond(stream, &Response::text(503, "busy\n"));
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let handler = handler.clone();
                let active = active.clone();
                let spawned = std::thread::Builder::new()
                    .name("ferroturn-http-conn".into())
                    .spawn(move || {
                        let _ = serve(stream, &handler);
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    tracing::warn!("cannot start an HTTP connection thread");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::debug!(error = %e, "HTTP accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn serve(stream: TcpStream, handler: &Handler) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let response = match read_request(&stream) {
        Ok(request) => handler(&request),
        Err(e) => Response::text(400, format!("bad request: {e}\n")),
    };
    respond(stream, &response)
}

fn read_request(stream: &TcpStream) -> io::Result<Request> {
    let mut reader = BufReader::new(stream.take((MAX_HEADER_BYTES + MAX_BODY_BYTES) as u64));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other("malformed request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        query: query.to_string(),
        ..Request::default()
    };
    let mut content_length = 0usize;
    let mut header_bytes = line.len();
    loop {
        let mut header = String::new();
        let n = reader.read_line(&mut header)?;
        header_bytes += n;
        if header_bytes > MAX_HEADER_BYTES {
            return Err(io::Error::other("headers too large"));
        }
        let header = header.trim_end();
        if n == 0 || header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                content_length = value
                    .parse()
                    .map_err(|_| io::Error::other("bad Content-Length"))?;
                if content_length > MAX_BODY_BYTES {
                    return Err(io::Error::other("body too large"));
                }
            }
            "authorization" => {
                if let Some(token) = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                {
                    request.bearer = Some(token.trim().to_string());
                }
            }
            _ => {}
        }
    }
    request.body = vec![0; content_length];
    reader.read_exact(&mut request.body)?;
    Ok(request)
}

fn respond(mut stream: TcpStream, response: &Response) -> io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if response.status == 401 {
        head.push_str("WWW-Authenticate: Bearer\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}

/// Decodes a query value: `%XX` escapes and `+` as a space.
fn percent_decode(s: &str) -> String {
    decode(s, true)
}

/// Decodes a path segment: `%XX` escapes only (`+` is a literal `+` in a path).
pub(crate) fn percent_decode_path(s: &str) -> String {
    decode(s, false)
}

/// Invalid escapes stay as they are.
fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_parameters() {
        let r = Request {
            query: "user=al%20ice&ttl=60&x".into(),
            ..Request::default()
        };
        assert_eq!(r.param("user").as_deref(), Some("al ice"));
        assert_eq!(r.param("ttl").as_deref(), Some("60"));
        assert_eq!(r.param("x").as_deref(), Some(""));
        assert_eq!(r.param("nope"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%e2%82%ac%zz"), "\u{20ac}%zz");
        assert_eq!(
            percent_decode_path("dave%40example.org"),
            "dave@example.org"
        );
        assert_eq!(percent_decode_path("a+b%2Bc"), "a+b+c");
    }
}
