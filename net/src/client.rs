//! The lab's HTTP/1.1 client: the load generator's connections and the services' calls to
//! their peers.
//!
//! Hand-written rather than hyper's client connection: hyper drives each connection from a
//! task of its own and hands every request and answer across a channel, which costs two task
//! wake-ups per request — the largest share of a client's own CPU once the syscalls are paid
//! (docs/performance.md, "Load generator" and "The lab's CPU per span"). Here the caller's
//! task writes the request head in one `write` and parses the answer in place with `httparse`
//! (the parser hyper itself uses), so a request costs one write, usually one read, and no task
//! switch. The framing rules are RFC 9112's: `Content-Length`, `chunked`, no body for
//! 1xx/204/304, or read to the end when the server gives neither (which also ends the
//! connection).
//!
//! [`Connection`] is one connection, used by one task at a time; [`Pool`] keeps the idle
//! connections of many tasks by address, for callers that do not own one each.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A request as it goes on the wire: no body (the lab's requests carry none).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The request target in origin form (`/checkout?x=1`).
    pub target: &'a str,
    /// Every header, `Host` included.
    pub headers: Headers<'a>,
}

/// A request's headers: a map, or lines already in their wire form.
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    /// Written in the map's order.
    Map(&'a http::HeaderMap),
    /// `name: value\r\n` lines, written as they are: the load generator builds them from parts
    /// encoded once per run, and a service's call straight from its propagators
    /// (`tracelab_propagation::LineInjector`), which spares a map and its allocations per
    /// request. Whoever builds them vouches that each name is a token and each value holds no
    /// line break.
    Lines(&'a [u8]),
}

impl<'a> From<&'a http::HeaderMap> for Headers<'a> {
    fn from(map: &'a http::HeaderMap) -> Self {
        Headers::Map(map)
    }
}

/// The connection failed mid-exchange, or the answer could not be parsed. The connection is
/// then no longer usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken;

/// An open HTTP/1.1 connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// The request head being written, then the answer being read; kept between requests so
    /// a request allocates nothing here.
    buffer: Vec<u8>,
    /// When the last answer was read in full. A connection idle for longer than
    /// [`IDLE_CHECK`] is checked for a close by the peer before it carries another request.
    last_answer: Instant,
    /// False once the connection cannot carry another request: after a failure, a
    /// `Connection: close`, an answer framed by the end of the connection, or
    /// [`Connection::abandon`].
    usable: bool,
}

/// A connection that has been idle longer than this is checked (one non-blocking read) for a
/// close by the server before it is reused, so that a server's idle timeout costs a new
/// connection, not a failed request. Under load the check never runs.
const IDLE_CHECK: Duration = Duration::from_millis(250);

/// Room for the answer's head; a longer head is read into a larger buffer.
const BUFFER: usize = 8 * 1024;

/// The most header lines an answer may have.
const MAX_HEADERS: usize = 64;

/// How the rest of an answer after its head is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Connection {
    /// Opens a connection to `address` (`host:port`; a name is resolved).
    pub async fn connect(address: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(address).await?;
        // Requests are small and answered one at a time: Nagle's delay would only add latency.
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(BUFFER),
            last_answer: Instant::now(),
            usable: true,
        })
    }

    /// Sends `request` and reads its whole answer (the body is read and dropped); the answer's
    /// status. Cancelling the future leaves the connection in an unknown state: call
    /// [`Connection::abandon`] or drop it.
    pub async fn send(&mut self, request: &Request<'_>) -> Result<u16, Broken> {
        let head_only = request.method == http::Method::HEAD;
        write_head(&mut self.buffer, request);
        let answer = self.exchange(head_only).await;
        if answer.is_err() {
            self.usable = false;
        }
        self.last_answer = Instant::now();
        answer
    }

    /// Marks the connection as unable to carry another request: its request is still
    /// outstanding (HTTP/1 cannot take a second one before the first is answered, and
    /// dropping the connection tells the server the caller left).
    pub fn abandon(&mut self) {
        self.usable = false;
    }

    /// False once the connection cannot carry another request (closed by the peer, failed,
    /// or abandoned).
    pub fn is_usable(&self) -> bool {
        self.is_usable_at(Instant::now())
    }

    /// [`Connection::is_usable`], for a caller that has just read the clock.
    pub fn is_usable_at(&self, now: Instant) -> bool {
        self.usable
            && (now.saturating_duration_since(self.last_answer) <= IDLE_CHECK || self.still_open())
    }

    /// When the last request's answer was read in full (or its exchange failed): the end of
    /// the last [`Connection::send`], for a caller that times it.
    pub fn answered_at(&self) -> Instant {
        self.last_answer
    }

    /// Writes the head in `buffer`, then reads one whole answer.
    async fn exchange(&mut self, head_only: bool) -> Result<u16, Broken> {
        self.stream
            .write_all(&self.buffer)
            .await
            .map_err(|_| Broken)?;
        self.buffer.clear();
        loop {
            let (status, framing, close, head_len) = loop {
                if let Some(head) = self.parse_head(head_only)? {
                    break head;
                }
                self.fill().await?;
            };
            self.buffer.drain(..head_len);
            if (100..200).contains(&status) {
                // An interim answer (`100 Continue`, `103 Early Hints`): the real one follows.
                continue;
            }
            match framing {
                Framing::None => {}
                Framing::Length(length) => self.skip(length).await?,
                Framing::Chunked => self.skip_chunked().await?,
                Framing::UntilClose => {
                    while self.fill_or_end().await? {
                        self.buffer.clear();
                    }
                    self.usable = false;
                }
            }
            if close || !self.buffer.is_empty() {
                // Closed by the server, or bytes nobody asked for: not safe to reuse.
                self.usable = false;
            }
            self.buffer.clear();
            return Ok(status);
        }
    }

    /// The answer's status, framing, whether the server closes, and the head's length, once
    /// the whole head is in the buffer.
    fn parse_head(&self, head_only: bool) -> Result<Option<(u16, Framing, bool, usize)>, Broken> {
        // Uninitialised: httparse writes the headers it finds, and setting all 64 first cost
        // more than parsing a short head.
        let mut headers =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let head_len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            &self.buffer,
            &mut headers,
        ) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Broken),
        };
        let status = response.code.ok_or(Broken)?;
        let mut length = None;
        let mut chunked = false;
        let mut close = response.version == Some(0);
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                let value = std::str::from_utf8(header.value).map_err(|_| Broken)?;
                length = Some(value.trim().parse::<u64>().map_err(|_| Broken)?);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = header
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if header.name.eq_ignore_ascii_case("connection") {
                close |= header
                    .value
                    .split(|&b| b == b',')
                    .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
            }
        }
        let framing = if head_only || (100..200).contains(&status) || status == 204 || status == 304
        {
            Framing::None
        } else if chunked {
            Framing::Chunked
        } else if let Some(length) = length {
            Framing::Length(length)
        } else {
            Framing::UntilClose
        };
        Ok(Some((status, framing, close, head_len)))
    }

    /// Reads more into the buffer; the end of the connection here is a failure.
    async fn fill(&mut self) -> Result<(), Broken> {
        if self.fill_or_end().await? {
            Ok(())
        } else {
            Err(Broken)
        }
    }

    /// Reads more into the buffer; false at the end of the connection.
    async fn fill_or_end(&mut self) -> Result<bool, Broken> {
        if self.buffer.capacity() - self.buffer.len() < 1024 {
            self.buffer.reserve(BUFFER);
        }
        match self.stream.read_buf(&mut self.buffer).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(_) => Err(Broken),
        }
    }

    /// Reads and drops `length` bytes of body.
    async fn skip(&mut self, mut length: u64) -> Result<(), Broken> {
        loop {
            let here = (self.buffer.len() as u64).min(length);
            self.buffer.drain(..here as usize);
            length -= here;
            if length == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Reads and drops a chunked body, trailers included.
    async fn skip_chunked(&mut self) -> Result<(), Broken> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buffer) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buffer.drain(..used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.fill().await?,
                    Err(_) => return Err(Broken),
                }
            };
            if size == 0 {
                break;
            }
            // The chunk's data and the line end after it.
            self.skip(size + 2).await?;
        }
        // Trailer lines, each ending in CRLF, up to an empty line.
        loop {
            match self.buffer.windows(2).position(|pair| pair == b"\r\n") {
                Some(0) => {
                    self.buffer.drain(..2);
                    return Ok(());
                }
                Some(end) => {
                    self.buffer.drain(..end + 2);
                }
                None => self.fill().await?,
            }
        }
    }

    /// Whether the server has not closed the connection (or sent something unasked) while it
    /// was idle, by one non-blocking read.
    fn still_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// The request head, in one buffer: request line, headers, and an empty body's length for a
/// method that usually has a body (as hyper and curl send it).
fn write_head(buffer: &mut Vec<u8>, request: &Request<'_>) {
    buffer.clear();
    buffer.extend_from_slice(request.method.as_str().as_bytes());
    buffer.push(b' ');
    let target = if request.target.is_empty() {
        "/"
    } else {
        request.target
    };
    buffer.extend_from_slice(target.as_bytes());
    buffer.extend_from_slice(b" HTTP/1.1\r\n");
    match request.headers {
        Headers::Map(map) => {
            for (name, value) in map {
                buffer.extend_from_slice(name.as_str().as_bytes());
                buffer.extend_from_slice(b": ");
                buffer.extend_from_slice(value.as_bytes());
                buffer.extend_from_slice(b"\r\n");
            }
        }
        Headers::Lines(lines) => buffer.extend_from_slice(lines),
    }
    if matches!(
        *request.method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    ) {
        buffer.extend_from_slice(b"content-length: 0\r\n");
    }
    buffer.extend_from_slice(b"\r\n");
}

/// Idle connections by address, shared by every task of one caller (a service's calls to
/// its peers): a call takes one out, or opens one when none is idle, and puts it back once
/// its answer is read in full. A connection whose call failed, timed out or was cancelled is
/// never put back, so the server sees the caller leave, as with any client.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<HashMap<Box<str>, Vec<Connection>>>,
    /// The most idle connections kept per address; more are closed.
    max_idle: usize,
}

/// How a pooled request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made.
    Connect,
    /// No answer within the timeout.
    Timeout,
    /// The connection failed mid-exchange or the answer could not be parsed.
    Request,
}

impl Pool {
    /// A pool that keeps at most `max_idle` idle connections per address.
    pub fn new(max_idle: usize) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle,
        }
    }

    /// Sends `request` to `address` over an idle connection or a new one; the answer's
    /// status. `timeout` bounds the whole call, connecting included.
    pub async fn send(
        &self,
        address: &str,
        request: &Request<'_>,
        timeout: Option<Duration>,
    ) -> Result<u16, Failure> {
        let exchange = async {
            let mut connection = match self.take(address) {
                Some(connection) => connection,
                None => Connection::connect(address)
                    .await
                    .map_err(|_| Failure::Connect)?,
            };
            let status = connection
                .send(request)
                .await
                .map_err(|Broken| Failure::Request)?;
            self.put(address, connection);
            Ok(status)
        };
        match timeout {
            // On a timeout the exchange, and with it the connection, is dropped: the server
            // sees the connection close, as from any client that gave up.
            Some(timeout) => tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or(Err(Failure::Timeout)),
            None => exchange.await,
        }
    }

    /// An idle connection to `address` that can still carry a request.
    fn take(&self, address: &str) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle.get_mut(address)?;
        while let Some(connection) = connections.pop() {
            if connection.is_usable() {
                return Some(connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next request to `address`, if it can carry one and there is
    /// room.
    fn put(&self, address: &str, connection: Connection) {
        if !connection.usable {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = match idle.get_mut(address) {
            Some(connections) => connections,
            None => idle.entry(address.into()).or_default(),
        };
        if connections.len() < self.max_idle {
            connections.push(connection);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server that answers each request on a connection with the next of `answers` and
    /// counts the connections it accepted.
    async fn server(
        answers: Vec<&'static str>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answers = answers.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    for answer in answers {
                        // Read up to the end of one request head.
                        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut chunk = [0u8; 1024];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                        buffer.drain(..end + 4);
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (address, accepted)
    }

    fn get<'a>(headers: &'a http::HeaderMap) -> Request<'a> {
        Request {
            method: &http::Method::GET,
            target: "/x",
            headers: headers.into(),
        }
    }

    #[tokio::test]
    async fn a_pool_reuses_a_connection_and_reads_every_framing() {
        let (address, accepted) = server(vec![
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let pool = Pool::new(4);
        let headers = http::HeaderMap::new();
        assert_eq!(pool.send(&address, &get(&headers), None).await, Ok(200));
        assert_eq!(pool.send(&address, &get(&headers), None).await, Ok(503));
        assert_eq!(pool.send(&address, &get(&headers), None).await, Ok(204));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_framed_by_close_is_read_and_its_connection_not_reused() {
        // No length, no chunks: the answer ends where the server closes, after its only answer.
        let (address, accepted) = server(vec!["HTTP/1.1 200 OK\r\n\r\nuntil close"]).await;
        let pool = Pool::new(4);
        let headers = http::HeaderMap::new();
        assert_eq!(pool.send(&address, &get(&headers), None).await, Ok(200));
        assert_eq!(pool.send(&address, &get(&headers), None).await, Ok(200));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_told_apart() {
        let headers = http::HeaderMap::new();
        let pool = Pool::new(4);
        // Nothing listens on a port that was just freed.
        let free = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let nowhere = free.local_addr().expect("address").to_string();
        drop(free);
        assert_eq!(
            pool.send(&nowhere, &get(&headers), None).await,
            Err(Failure::Connect)
        );
        // A server that never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = silent.local_addr().expect("address").to_string();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                open.push(stream);
            }
        });
        assert_eq!(
            pool.send(&address, &get(&headers), Some(Duration::from_millis(100)))
                .await,
            Err(Failure::Timeout)
        );
        held.abort();
        // A server that closes without answering.
        let (closing, _) = server(vec![]).await;
        assert_eq!(
            pool.send(&closing, &get(&headers), None).await,
            Err(Failure::Request)
        );
    }

    #[test]
    fn a_request_head_is_one_buffer() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, "127.0.0.1:8080".parse().unwrap());
        headers.insert("traceparent", "00-abc-def-01".parse().unwrap());
        let mut buffer = Vec::new();
        write_head(
            &mut buffer,
            &Request {
                method: &http::Method::POST,
                target: "/charge",
                headers: Headers::Map(&headers),
            },
        );
        assert_eq!(
            String::from_utf8(buffer).unwrap(),
            "POST /charge HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ntraceparent: 00-abc-def-01\r\ncontent-length: 0\r\n\r\n"
        );
        let mut buffer = Vec::new();
        write_head(
            &mut buffer,
            &Request {
                method: &http::Method::GET,
                target: "/",
                headers: Headers::Lines(b"host: a:1\r\nbaggage: k=v\r\n"),
            },
        );
        assert_eq!(
            String::from_utf8(buffer).unwrap(),
            "GET / HTTP/1.1\r\nhost: a:1\r\nbaggage: k=v\r\n\r\n"
        );
    }
}
