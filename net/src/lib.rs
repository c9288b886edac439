//! HTTP/1 for the lab: serving with limits, for every listener of the lab (the services'
//! traffic ports, their admin APIs and the receiver's OTLP/HTTP port), and the client the
//! load generator and the services' calls send with ([`client`]).
//!
//! `axum::serve` reads request headers for as long as a client cares to send them and sleeps a
//! whole second after an accept error. The first lets 50 half-open connections (slowloris) hold
//! a service for as long as they like; the second turns one moment of too many open files into a
//! second of refused connections. [`serve`] uses hyper's HTTP/1 connection directly instead:
//!
//! - a header-read timeout, which hyper also arms while a keep-alive connection waits for its
//!   next request, so it bounds idle connections too;
//! - accept errors are logged once a burst and retried after a few milliseconds;
//! - a graceful shutdown that lets requests in flight finish, bounded by the caller.
//!
//! Layout: serving in this file; the client (the load generator's connections, the services'
//! calls) in `client`.

pub mod client;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How long a client may take to send a request's headers, and how long a keep-alive
/// connection may sit idle before its next request.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Something that accepts connections: a `TcpListener`, or a wrapper that refuses some (a
/// service that is down).
pub trait Accept: Send + 'static {
    /// The connection type.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Io, SocketAddr)> {
        let (stream, addr) = tokio::net::TcpListener::accept(self).await?;
        // Requests and answers are small: Nagle's delay would only add latency.
        let _ = stream.set_nodelay(true);
        Ok((stream, addr))
    }
}

/// Serves `app` over HTTP/1 on `listener` until `shutdown` is cancelled, then waits for the
/// requests in flight (the caller bounds that wait by how long it waits for this future).
pub async fn serve<A: Accept>(
    mut listener: A,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut failures: u64 = 0;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (io, _peer) = match accepted {
            Ok(accepted) => {
                failures = 0;
                accepted
            }
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted: both
                // pass. Log the first of a burst, then wait a moment rather than spin.
                if failures == 0 {
                    tracing::warn!(error = %e, "accept failed; retrying");
                }
                failures += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| app.clone().oneshot(request));
        let connection = http.serve_connection(TokioIo::new(io), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is not a server error.
            let _ = watched.await;
        });
    }
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn start(limits: Limits) -> (SocketAddr, CancellationToken) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, app, limits, stop.clone()));
        (addr, stop)
    }

    #[tokio::test]
    async fn a_slow_header_is_cut_off() {
        let (addr, _stop) = start(Limits {
            header_read_timeout: Duration::from_millis(300),
        })
        .await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 256];
        let started = std::time::Instant::now();
        // The server answers the unfinished request with nothing and closes: read sees EOF.
        let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
            .await
            .expect("closed before the test's own timeout")
            .unwrap_or(0);
        assert!(started.elapsed() >= Duration::from_millis(250));
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(!text.contains("200 OK"), "{text}");
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_and_a_fast_one_served() {
        let (addr, _stop) = start(Limits {
            header_read_timeout: Duration::from_millis(300),
        })
        .await;
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = client.read(&mut buf).await.expect("answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
        // Then nothing: the idle connection is closed.
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("closed when idle")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn shutdown_stops_accepting() {
        let (addr, stop) = start(Limits::default()).await;
        stop.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
