//! A stand-in for an insurer's benefits API, and the HTTP client the sync job calls it with.
//!
//! Both are a few lines of HTTP/1.1 over tokio's TCP, so the example needs no HTTP crates: one
//! `GET` per connection, `Connection: close`, no TLS. A real service would use an HTTP client
//! crate; what matters here is what the job does with each status code (see `sync_benefits`).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The largest request head or response the two sides read.
const MAX_MESSAGE: usize = 64 * 1024;

/// An insurer with a few members and a few bad habits.
#[derive(Debug, Default)]
pub(crate) struct Insurer {
    /// Member id -> (plan, co-payment in cents). Anyone else is unknown: 404.
    plans: HashMap<i64, (&'static str, i64)>,
    /// Members whose first request fails with 500.
    fails_first: HashSet<i64>,
    /// Members whose first request is rate limited: 429 with `Retry-After`.
    limits_first: HashSet<i64>,
    /// Requests seen per member.
    requests: Mutex<HashMap<i64, u32>>,
}

impl Insurer {
    /// The insurer of the demo: patient 1 has a plan but the first request fails, patient 2 has
    /// a plan but is rate limited once, anyone else is unknown.
    pub(crate) fn demo() -> Self {
        let mut insurer = Insurer::default();
        insurer.plans.insert(1, ("Gold PPO", 2_500));
        insurer.plans.insert(2, ("Silver HMO", 4_000));
        insurer.fails_first.insert(1);
        insurer.limits_first.insert(2);
        insurer
    }

    /// How many requests about `patient_id` arrived.
    pub(crate) fn requests(&self, patient_id: i64) -> u32 {
        self.requests.lock().expect("requests").get(&patient_id).copied().unwrap_or(0)
    }

    /// Serves the API on a free port of 127.0.0.1 until the returned task is aborted.
    pub(crate) async fn serve(self: Arc<Self>) -> io::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, say: wait instead of spinning.
                        tracing::warn!(error = %e, "insurer API: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let insurer = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = insurer.handle(stream).await {
                        tracing::warn!(error = %e, "insurer API: connection failed");
                    }
                });
            }
        });
        Ok((addr, task))
    }

    /// Reads one request and writes its response.
    async fn handle(&self, mut stream: TcpStream) -> io::Result<()> {
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        // A GET has no body: the request ends with the blank line after its headers.
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 || head.len() > MAX_MESSAGE {
                return Ok(());
            }
            head.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&head);
        let mut request_line = head.lines().next().unwrap_or_default().split(' ');
        let response = match (request_line.next(), request_line.next()) {
            (Some("GET"), Some(path)) => self.answer(path),
            _ => Response::error(400),
        };
        stream.write_all(&response.to_bytes()).await?;
        stream.shutdown().await
    }

    /// The response to `GET path`.
    fn answer(&self, path: &str) -> Response {
        let id = path.strip_prefix("/patients/").and_then(|rest| rest.strip_suffix("/benefits"));
        let Some(id) = id.and_then(|id| id.parse::<i64>().ok()) else {
            return Response::error(404);
        };
        let seen = {
            let mut requests = self.requests.lock().expect("requests");
            let n = requests.entry(id).or_default();
            *n += 1;
            *n
        };
        match self.plans.get(&id) {
            None => Response::error(404),
            Some(_) if seen == 1 && self.fails_first.contains(&id) => Response::error(500),
            Some(_) if seen == 1 && self.limits_first.contains(&id) => {
                Response { retry_after: Some(Duration::from_secs(1)), ..Response::error(429) }
            }
            Some((plan, copay_cents)) => Response {
                status: 200,
                retry_after: None,
                body: serde_json::json!({ "patient_id": id, "plan": plan, "copay_cents": copay_cents })
                    .to_string(),
            },
        }
    }
}

/// An HTTP response, as much of it as the clinic cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// The `Retry-After` header, in whole seconds (the form the insurer sends).
    pub(crate) retry_after: Option<Duration>,
    /// The body (JSON).
    pub(crate) body: String,
}

impl Response {
    fn error(status: u16) -> Self {
        Response { status, retry_after: None, body: format!("{{\"error\":{status}}}") }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            404 => "Not Found",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            _ => "Bad Request",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.body.len()
        );
        if let Some(after) = self.retry_after {
            head.push_str(&format!("Retry-After: {}\r\n", after.as_secs()));
        }
        head.push_str("\r\n");
        [head.as_bytes(), self.body.as_bytes()].concat()
    }

    fn parse(raw: &[u8]) -> io::Result<Self> {
        let bad =
            |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP response: {what}"));
        let text = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| bad("no status code"))?;
        let retry_after = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .map(Duration::from_secs);
        Ok(Response { status, retry_after, body: body.to_string() })
    }
}

/// `GET http://{addr}{path}`, with a 10 s limit on the whole exchange.
pub(crate) async fn get(addr: &str, path: &str) -> io::Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        // With `Connection: close` the response ends where the server closes the connection, so
        // neither Content-Length nor chunked encoding needs handling.
        let mut raw = Vec::new();
        stream.take(MAX_MESSAGE as u64).read_to_end(&mut raw).await?;
        Response::parse(&raw)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("GET {path}: no answer within 10 s")))?
}
