//! How a request reaches its target. The runner only needs "send this, tell me how it
//! ended", so tests can swap the network for a transport whose answers take simulated time
//! under `tokio::time::pause()`.

use std::future::Future;
use std::time::Duration;

use crate::plan::EntryTarget;

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

/// Sends one request.
pub trait Transport: Send + Sync + 'static {
    /// Sends a request to `entry` with `headers`, waiting at most `timeout`.
    fn send(
        &self,
        entry: &EntryTarget,
        headers: http::HeaderMap,
        timeout: Duration,
    ) -> impl Future<Output = Answer> + Send;
}

/// HTTP over reqwest's connection pool.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A client keeping up to `connections` idle connections per host, so that the
    /// connections of a busy second are reused by the next instead of reopened.
    pub fn new(connections: usize) -> std::io::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(HttpTransport { client })
    }
}

impl Transport for HttpTransport {
    async fn send(
        &self,
        entry: &EntryTarget,
        headers: http::HeaderMap,
        timeout: Duration,
    ) -> Answer {
        let method =
            reqwest::Method::from_bytes(entry.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let sent = self
            .client
            .request(method, &entry.url)
            .headers(headers)
            .timeout(timeout)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                // The body is read so the connection can be reused.
                match response.bytes().await {
                    Ok(_) => Answer::Status(status),
                    Err(e) if e.is_timeout() => Answer::Timeout,
                    Err(_) => Answer::RequestError,
                }
            }
            Err(e) if e.is_timeout() => Answer::Timeout,
            Err(e) if e.is_connect() => Answer::ConnectError,
            Err(_) => Answer::RequestError,
        }
    }
}
