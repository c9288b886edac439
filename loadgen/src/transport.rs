//! How a request reaches its target: each worker owns one connection and sends its requests
//! over it one after the other, as oha and wrk do. There is no pool to check a connection out
//! of per request, and a stalled answer holds exactly one connection, as it would for a user.
//!
//! The runner only needs "connect" and "send this, tell me how it ended", so tests swap the
//! network for a transport whose answers take simulated time under `tokio::time::pause()`.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::plan::Target;

/// How a request ended at the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer with this status.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// The connection could not be made.
    ConnectError,
    /// Any other failure.
    RequestError,
}

/// The parts of a request the transport puts on the wire.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The path (origin form, `/checkout`).
    pub path: &'a http::Uri,
    /// Every header, `Host` and the trace context included.
    pub headers: http::HeaderMap,
}

/// Opens connections to targets.
pub trait Transport: Send + Sync + 'static {
    /// One open connection.
    type Connection: Connection;

    /// Opens a connection to `target`; `Err` is how the failure is recorded.
    fn connect(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Self::Connection, Answer>> + Send;
}

/// One connection, owned by one worker.
pub trait Connection: Send + 'static {
    /// Sends a request and reads its whole answer, waiting at most `timeout`.
    fn send(
        &mut self,
        request: Outgoing<'_>,
        timeout: Duration,
    ) -> impl Future<Output = Answer> + Send;

    /// False once the connection cannot carry another request (closed by the peer, or
    /// abandoned after a timeout with its request still outstanding).
    fn is_usable(&self) -> bool;
}

/// HTTP/1.1 over TCP, one request at a time, written and read by the worker's own task.
///
/// Hand-written rather than hyper's client connection: hyper drives each connection from a
/// task of its own and hands every request and answer across a channel, which costs two task
/// wake-ups per request — the largest share of the client's own CPU once the syscalls are
/// paid (docs/performance.md, "Load generator"). Here the worker writes the request head in one
/// `write` and parses the answer in place with `httparse` (the parser hyper itself uses), so a
/// request costs one write, usually one read, and no task switch. The framing rules are RFC
/// 9112's: `Content-Length`, `chunked`, no body for 1xx/204/304, or read to the end when the
/// server gives neither (which also ends the connection).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTransport;

/// An open HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConnection {
    stream: TcpStream,
    /// The request head being written, then the answer being read; kept between requests so
    /// a request allocates nothing here.
    buffer: Vec<u8>,
    /// When the last answer was read in full. A connection idle for longer than
    /// [`IDLE_CHECK`] is checked for a close by the peer before it carries another request.
    last_answer: Instant,
    /// False once the connection cannot carry another request: after a timeout (HTTP/1
    /// cannot take a second request while the first is unanswered, and dropping the
    /// connection tells the target the caller left), a failure, a `Connection: close`, or an
    /// answer framed by the end of the connection.
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

impl Transport for HttpTransport {
    type Connection = HttpConnection;

    async fn connect(&self, target: &Target) -> Result<HttpConnection, Answer> {
        let stream = TcpStream::connect(target.authority.as_str())
            .await
            .map_err(|_| Answer::ConnectError)?;
        // Requests are small and answered one at a time: Nagle's delay would only add latency.
        let _ = stream.set_nodelay(true);
        Ok(HttpConnection {
            stream,
            buffer: Vec::with_capacity(BUFFER),
            last_answer: Instant::now(),
            usable: true,
        })
    }
}

impl Connection for HttpConnection {
    async fn send(&mut self, request: Outgoing<'_>, timeout: Duration) -> Answer {
        let head_only = request.method == http::Method::HEAD;
        write_head(&mut self.buffer, &request);
        let answer = match tokio::time::timeout(timeout, self.exchange(head_only)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(Broken)) => {
                self.usable = false;
                Answer::RequestError
            }
            Err(_) => {
                self.usable = false;
                Answer::Timeout
            }
        };
        self.last_answer = Instant::now();
        answer
    }

    fn is_usable(&self) -> bool {
        self.usable && (self.last_answer.elapsed() <= IDLE_CHECK || self.still_open())
    }
}

/// The connection failed mid-exchange or the answer could not be parsed.
#[derive(Debug)]
struct Broken;

/// How the rest of an answer after its head is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl HttpConnection {
    /// Writes the head in `buffer`, then reads one whole answer.
    async fn exchange(&mut self, head_only: bool) -> Result<Answer, Broken> {
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
            return Ok(Answer::Status(status));
        }
    }

    /// The answer's status, framing, whether the server closes, and the head's length, once
    /// the whole head is in the buffer.
    fn parse_head(&self, head_only: bool) -> Result<Option<(u16, Framing, bool, usize)>, Broken> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&self.buffer) {
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
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// The request head, in one buffer: request line, headers, and an empty body's length for a
/// method that usually has a body (as hyper and curl send it).
fn write_head(buffer: &mut Vec<u8>, request: &Outgoing<'_>) {
    buffer.clear();
    buffer.extend_from_slice(request.method.as_str().as_bytes());
    buffer.push(b' ');
    let target = request
        .path
        .path_and_query()
        .map_or("/", |path| path.as_str());
    buffer.extend_from_slice(target.as_bytes());
    buffer.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &request.headers {
        buffer.extend_from_slice(name.as_str().as_bytes());
        buffer.extend_from_slice(b": ");
        buffer.extend_from_slice(value.as_bytes());
        buffer.extend_from_slice(b"\r\n");
    }
    if matches!(
        *request.method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    ) {
        buffer.extend_from_slice(b"content-length: 0\r\n");
    }
    buffer.extend_from_slice(b"\r\n");
}
