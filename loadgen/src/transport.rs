//! How a request reaches its target: each worker owns one connection and sends its requests
//! over it one after the other, as oha and wrk do. There is no pool to check a connection out
//! of per request, and a stalled answer holds exactly one connection, as it would for a user.
//!
//! The runner only needs "connect" and "send this, tell me how it ended", so tests swap the
//! network for a transport whose answers take simulated time under `tokio::time::pause()`.

use std::future::Future;
use std::time::Duration;

use tracelab_net::client;

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

/// HTTP/1.1 over TCP, one request at a time, written and read by the worker's own task
/// (`tracelab_net::client`: no task of its own per connection, no pool to check out of).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTransport;

/// An open HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConnection(client::Connection);

impl Transport for HttpTransport {
    type Connection = HttpConnection;

    async fn connect(&self, target: &Target) -> Result<HttpConnection, Answer> {
        client::Connection::connect(target.authority.as_str())
            .await
            .map(HttpConnection)
            .map_err(|_| Answer::ConnectError)
    }
}

impl Connection for HttpConnection {
    async fn send(&mut self, request: Outgoing<'_>, timeout: Duration) -> Answer {
        let target = request
            .path
            .path_and_query()
            .map_or("/", |path| path.as_str());
        let wire = client::Request {
            method: request.method,
            target,
            headers: &request.headers,
        };
        match tokio::time::timeout(timeout, self.0.send(&wire)).await {
            Ok(Ok(status)) => Answer::Status(status),
            Ok(Err(client::Broken)) => Answer::RequestError,
            Err(_) => {
                // HTTP/1 cannot take a second request while the first is unanswered, and
                // dropping the connection tells the target the caller left.
                self.0.abandon();
                Answer::Timeout
            }
        }
    }

    fn is_usable(&self) -> bool {
        self.0.is_usable()
    }
}
