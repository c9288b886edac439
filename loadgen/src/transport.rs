//! How a request reaches its target: each worker owns one connection and sends its requests
//! over it one after the other, as oha and wrk do. There is no pool to check a connection out
//! of per request, and a stalled answer holds exactly one connection, as it would for a user.
//!
//! The runner only needs "connect" and "send this, tell me how it ended", so tests swap the
//! network for a transport whose answers take simulated time under `tokio::time::pause()`.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

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

/// HTTP/1.1 over TCP with hyper's client connection, one request at a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTransport;

/// An open HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConnection {
    sender: http1::SendRequest<Empty<Bytes>>,
    /// Set after a timeout: HTTP/1 cannot take a second request while the first is still
    /// unanswered, so the connection is dropped, which also tells the target the caller left.
    abandoned: bool,
}

impl Transport for HttpTransport {
    type Connection = HttpConnection;

    async fn connect(&self, target: &Target) -> Result<HttpConnection, Answer> {
        let stream = tokio::net::TcpStream::connect(target.authority.as_str())
            .await
            .map_err(|_| Answer::ConnectError)?;
        // Requests are small and answered one at a time: Nagle's delay would only add latency.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Answer::ConnectError)?;
        // The connection's I/O runs as its own task; it ends when the sender is dropped or the
        // peer closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(HttpConnection {
            sender,
            abandoned: false,
        })
    }
}

impl Connection for HttpConnection {
    async fn send(&mut self, request: Outgoing<'_>, timeout: Duration) -> Answer {
        let exchange = async {
            if self.sender.ready().await.is_err() {
                return Answer::RequestError;
            }
            let mut http_request = http::Request::new(Empty::<Bytes>::new());
            *http_request.method_mut() = request.method.clone();
            *http_request.uri_mut() = request.path.clone();
            *http_request.headers_mut() = request.headers;
            let response = match self.sender.send_request(http_request).await {
                Ok(response) => response,
                Err(_) => return Answer::RequestError,
            };
            let status = response.status().as_u16();
            // The body is read to its end so the connection can carry the next request.
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    return Answer::RequestError;
                }
            }
            Answer::Status(status)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => {
                if answer == Answer::RequestError {
                    self.abandoned = true;
                }
                answer
            }
            Err(_) => {
                self.abandoned = true;
                Answer::Timeout
            }
        }
    }

    fn is_usable(&self) -> bool {
        !self.abandoned && !self.sender.is_closed()
    }
}
