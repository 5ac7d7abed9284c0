//! The control-plane HTTP/1.1 listeners (metrics, health, admin, credentials), served by hyper.
//!
//! Why hyper and a tokio runtime here, when the relay itself runs on mio shards: these listeners
//! face the network with an admin token, so request parsing, framing (Content-Length,
//! chunked bodies, pipelining, `Expect: 100-continue`) and the header limits come from the most
//! used HTTP/1 implementation in Rust instead of our own code. tiny_http, the blocking
//! alternative, was measured first and rejected: it reads a header line without any length
//! limit, sets no read timeout (one slow client holds a thread forever) and starts a new thread
//! for every connection its pool has no idle thread for, so neither memory nor threads are
//! bounded. Here each listener owns one thread running a current-thread tokio runtime (tokio
//! sits on the same mio the shards use): connections are tasks on it, so a slow client costs
//! a few KiB and never blocks another, and handlers run on a small bounded blocking pool because
//! some of them wait for the shards' answers. The relay's hot path never touches this code.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections per listener (beyond that a connection gets
//! `503` and is closed), [`MAX_HEADER_BYTES`] of request head (`431` beyond), [`MAX_BODY_BYTES`]
//! of body (`413`), [`HEADER_TIMEOUT`] to send a request head and [`BODY_TIMEOUT`] to send its
//! body (slow-loris), and [`CONNECTION_LIFETIME`] for any keep-alive connection.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use tokio::sync::{oneshot, Semaphore};

/// Largest request head (request line and headers).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 64;
/// Time a client has to send a complete request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to send a request body once its head arrived.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection stays open (keep-alive included); a scraper simply reconnects.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Open connections per listener.
pub const MAX_CONNECTIONS: usize = 64;
/// Threads that run handlers per listener (besides the one that does the I/O).
const HANDLER_THREADS: usize = 2;

/// A parsed request, as the handlers see it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method, as sent (HTTP methods are case-sensitive).
    pub method: String,
    /// Path without the query string, undecoded.
    pub path: String,
    /// Query string after `?`, undecoded.
    pub query: String,
    /// The bearer token of the one `Authorization: Bearer` header.
    pub bearer: Option<String>,
    /// The body (decoded when it came chunked).
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

    /// A query parameter, decoded as a form value (`%XX` escapes, `+` as a space).
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
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

    /// A JSON response with `value` serialized by serde_json.
    pub fn json(status: u16, value: &impl Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response {
                status,
                content_type: "application/json",
                body,
            },
            // Our answers are plain structs and maps with string keys, which always serialize.
            Err(e) => Response::text(500, format!("cannot encode the answer: {e}\n")),
        }
    }

    /// `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Self {
        Response::json(status, &serde_json::json!({ "error": message }))
    }
}

/// Handles one request. Handlers may block briefly (they run on the listener's handler pool).
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A running HTTP listener; dropping it stops it.
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on `addr` and serves `handler` on a thread of its own.
    pub fn start(addr: SocketAddr, name: &str, handler: Handler) -> io::Result<HttpServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(HANDLER_THREADS)
            .thread_name(format!("ferroturn-{name}-handler"))
            .build()?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("ferroturn-{name}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let accept = tokio::spawn(accept_loop(listener, handler));
                    // Either the owner asked to stop or dropped the sender: stop both ways.
                    let _ = stopped.await;
                    accept.abort();
                });
                // Connections still open are dropped; a handler still running gets a moment.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(HttpServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, handler: Handler) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: wait instead of spinning; the listener stays.
                tracing::debug!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Best effort and never blocking: the socket buffer takes this small answer.
            let _ = stream.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbusy\n",
            );
            tracing::debug!(%peer, "HTTP listener at its connection limit");
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(stream, handler).await;
        });
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, handler: Handler) {
    let service = service_fn(move |req| answer(handler.clone(), req));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEADER_BYTES.max(8192) + MAX_BODY_BYTES);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    if tokio::time::timeout(CONNECTION_LIFETIME, conn.as_mut())
        .await
        .is_err()
    {
        // Finish the request in flight, then close.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(BODY_TIMEOUT, conn).await;
    }
}

async fn answer(
    handler: Handler,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (head, body) = req.into_parts();
    let collected =
        tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await;
    let body = match collected {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(encode(&Response::text(413, "body too large\n"), false));
        }
        Ok(Err(_)) => return Ok(encode(&Response::text(400, "bad request body\n"), false)),
        Err(_) => return Ok(encode(&Response::text(408, "body too slow\n"), false)),
    };
    let request = Request {
        method: head.method.as_str().to_string(),
        path: head.uri.path().to_string(),
        query: head.uri.query().unwrap_or("").to_string(),
        bearer: bearer(&head.headers),
        body: body.to_vec(),
    };
    let response = tokio::task::spawn_blocking(move || handler(&request))
        .await
        .unwrap_or_else(|_| Response::text(500, "the handler failed\n"));
    Ok(encode(&response, true))
}

/// The token of the request's only `Authorization` header, when it says `Bearer`. Two
/// `Authorization` headers are no credential at all.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let mut all = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (all.next(), all.next()) else {
        return None;
    };
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A hyper response; `keep_alive: false` closes the connection after it (the request body
/// was not read to its end, so the next request's start is unknown).
fn encode(response: &Response, keep_alive: bool) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body.clone())));
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(response.content_type),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if response.status == 401 {
        headers.insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    if !keep_alive {
        headers.insert("connection", HeaderValue::from_static("close"));
    }
    out
}

/// Decodes a path segment: `%XX` escapes only (`+` is a literal `+` in a path); invalid escapes
/// stay as they are and bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decode_path(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_parameters() {
        let r = Request {
            query: "user=al%20ice&ttl=60&x&plus=a+b%2Bc&bad=100%&bad2=%e2%82%ac%zz".into(),
            ..Request::default()
        };
        assert_eq!(r.param("user").as_deref(), Some("al ice"));
        assert_eq!(r.param("ttl").as_deref(), Some("60"));
        assert_eq!(r.param("x").as_deref(), Some(""));
        assert_eq!(r.param("nope"), None);
        assert_eq!(r.param("plus").as_deref(), Some("a b+c"));
        assert_eq!(r.param("bad").as_deref(), Some("100%"));
        assert_eq!(r.param("bad2").as_deref(), Some("\u{20ac}%zz"));
        assert_eq!(
            percent_decode_path("dave%40example.org"),
            "dave@example.org"
        );
        assert_eq!(percent_decode_path("a+b%2Bc"), "a+b+c");
        assert_eq!(percent_decode_path("%ff"), "\u{fffd}");
    }

    #[test]
    fn takes_one_bearer_token() {
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        assert_eq!(bearer(&headers(&["Bearer abc"])).as_deref(), Some("abc"));
        assert_eq!(bearer(&headers(&["bearer  abc "])).as_deref(), Some("abc"));
        assert_eq!(bearer(&headers(&["Basic abc"])), None);
        assert_eq!(bearer(&headers(&["Bearer "])), None);
        assert_eq!(bearer(&headers(&["Bearer a", "Bearer b"])), None);
        assert_eq!(bearer(&headers(&[])), None);
    }
}
