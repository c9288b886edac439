//! How a request reaches its target: each worker owns one connection and sends its requests
//! over it one after the other, as oha and wrk do. There is no pool to check a connection out
//! of per request, and a stalled answer holds exactly one connection, as it would for a user.
//!
//! The runner only needs "connect" and "send this, tell me how it ended", so tests swap the
//! network for a transport whose answers take simulated time under `tokio::time::pause()`.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::time::{Instant, Sleep};
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
    /// Every header, `Host` and the trace context included, as `name: value\r\n` lines.
    pub headers: &'a [u8],
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
    /// Sends a request and reads its whole answer, waiting until `deadline` at most; the
    /// answer and when it came (or the wait gave up).
    fn send(
        &mut self,
        request: Outgoing<'_>,
        deadline: Instant,
    ) -> impl Future<Output = (Answer, Instant)> + Send;

    /// False once the connection cannot carry another request (closed by the peer, or
    /// abandoned after a timeout with its request still outstanding); `now` is the caller's
    /// reading of the clock.
    fn is_usable(&self, now: Instant) -> bool;
}

/// HTTP/1.1 over TCP, one request at a time, written and read by the worker's own task
/// (`tracelab_net::client`: no task of its own per connection, no pool to check out of).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTransport;

/// An open HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConnection {
    connection: client::Connection,
    /// Armed for the deadline of this connection's first request, or of a later one; never
    /// for a deadline later than the current request's (moved back when one comes earlier).
    /// When it fires before the current deadline it is moved to it. So a request neither
    /// registers nor clears a timer of its own (`tokio::time::timeout` does both, which cost
    /// 1.6 % of the load generator's CPU at its maximum rate); the timer fires once a timeout
    /// period at most.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Transport for HttpTransport {
    type Connection = HttpConnection;

    async fn connect(&self, target: &Target) -> Result<HttpConnection, Answer> {
        client::Connection::connect(target.authority.as_str())
            .await
            .map(|connection| HttpConnection {
                connection,
                timer: None,
            })
            .map_err(|_| Answer::ConnectError)
    }
}

impl Connection for HttpConnection {
    async fn send(&mut self, request: Outgoing<'_>, deadline: Instant) -> (Answer, Instant) {
        let target = request
            .path
            .path_and_query()
            .map_or("/", |path| path.as_str());
        let wire = client::Request {
            method: request.method,
            target,
            headers: client::Headers::Lines(request.headers),
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            // An earlier deadline than any before (a shorter timeout): the timer must not
            // fire after it.
            timer.as_mut().reset(deadline);
        }
        let ended = {
            let mut exchange = std::pin::pin!(self.connection.send(&wire));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(answer) = exchange.as_mut().poll(cx) {
                    return Poll::Ready(Ok(answer));
                }
                while timer.as_mut().poll(cx).is_ready() {
                    let now = Instant::now();
                    if now >= deadline {
                        return Poll::Ready(Err(now));
                    }
                    // Fired for an earlier request's deadline: on to this one's (polled again by
                    // the loop, which registers it).
                    timer.as_mut().reset(deadline);
                }
                Poll::Pending
            })
            .await
        };
        match ended {
            Ok(Ok(status)) => (Answer::Status(status), self.connection.answered_at()),
            Ok(Err(client::Broken)) => (Answer::RequestError, self.connection.answered_at()),
            Err(now) => {
                // HTTP/1 cannot take a second request while the first is unanswered, and
                // dropping the connection tells the target the caller left.
                self.connection.abandon();
                (Answer::Timeout, now)
            }
        }
    }

    fn is_usable(&self, now: Instant) -> bool {
        self.connection.is_usable_at(now)
    }
}
