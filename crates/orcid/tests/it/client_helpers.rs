//! Helpers of the client tests: a tiny canned HTTP/1.1 server (for failures the simulator
//! cannot be made to show) and client constructors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orcid::client::{ClientConfig, OrcidClient, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A client id and secret for tests only.
pub const TEST_CLIENT_ID: &str = "APP-TEST000000000001";
pub const TEST_CLIENT_SECRET: &str = "test-client-secret-0f3c9a";
/// An access token for tests only, shaped like ORCID's (a UUID).
pub const TEST_ACCESS_TOKEN: &str = "f5af9f51-07e6-4332-8f1a-c0c11c1e3728";
/// A valid iD (Josiah Carberry).
pub const TEST_ORCID: &str = "0000-0002-1825-0097";

/// What the canned server does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answers with this status, these headers and this body (`Content-Length` is added).
    Respond {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Reads the request, then never answers (until the test ends).
    Hang,
    /// Reads the request, then closes the connection without a word.
    Close,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn json(status: u16, content_type: &str, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: body.to_owned(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }
}

/// A request as the canned server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The form fields of an `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// A server on 127.0.0.1:0 that plays `script` in order, then `then` for every later request.
pub struct CannedServer {
    base_url: String,
    received: Arc<Mutex<Vec<Recorded>>>,
}

impl CannedServer {
    pub async fn start(script: Vec<Reply>, then: Reply) -> CannedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let seen = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, next, script, then) =
                    (seen.clone(), next.clone(), script.clone(), then.clone());
                tokio::spawn(async move {
                    serve_one(stream, seen, next, script, then).await;
                });
            }
        });
        CannedServer { base_url, received }
    }

    /// The same reply for every request.
    pub async fn always(reply: Reply) -> CannedServer {
        CannedServer::start(Vec::new(), reply).await
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// How many requests arrived (counted when fully read, before answering).
    pub fn hits(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.received.lock().unwrap().clone()
    }
}

async fn serve_one(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<Recorded>>>,
    next: Arc<AtomicUsize>,
    script: Arc<Vec<Reply>>,
    then: Reply,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    seen.lock().unwrap().push(request);
    let index = next.fetch_add(1, Ordering::SeqCst);
    let reply = script.get(index).cloned().unwrap_or(then);
    match reply {
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ));
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        Reply::Close => drop(stream),
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        method,
        target,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A loopback port that refuses every connection, reserved for as long as this lives.
///
/// The socket is bound but never listens: the kernel answers connects with a reset, and no
/// parallel test can be given the port (it is bound, without `SO_REUSEADDR`), unlike a port
/// that was bound, noted and closed.
pub struct RefusingPort {
    _socket: tokio::net::TcpSocket,
    addr: std::net::SocketAddr,
}

impl RefusingPort {
    pub fn new() -> RefusingPort {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        RefusingPort {
            _socket: socket,
            addr,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A config for `base_url` with test credentials, no retries and short timeouts.
pub fn test_config(base_url: &str) -> ClientConfig {
    ClientConfig::custom(base_url, TEST_CLIENT_ID, TEST_CLIENT_SECRET.into())
        .unwrap()
        .with_retry(RetryPolicy::none())
        .with_request_timeout(Duration::from_secs(5))
}

/// A client of `base_url` that never retries.
pub fn client_without_retries(base_url: &str) -> OrcidClient {
    OrcidClient::new(test_config(base_url)).unwrap()
}

/// A client of `base_url` that retries `max_retries` times with millisecond back-off.
pub fn client_with_retries(base_url: &str, max_retries: u32) -> OrcidClient {
    OrcidClient::new(test_config(base_url).with_retry(RetryPolicy::new(
        max_retries,
        Duration::from_millis(1),
        Duration::from_millis(10),
    )))
    .unwrap()
}

pub fn test_orcid() -> orcid::OrcidId {
    TEST_ORCID.parse().unwrap()
}

pub fn test_token() -> orcid::client::AccessToken {
    orcid::client::AccessToken::new(TEST_ACCESS_TOKEN)
}
