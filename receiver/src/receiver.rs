//! Starting and stopping the two OTLP servers.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use crate::budget::{Budget, DEFAULT_IN_FLIGHT_BYTES};
use crate::store::TraceStore;
use crate::{grpc, http};

/// The body size limit used unless configured otherwise: 16 MiB, for both protocols.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How long [`Receiver::shutdown`] lets in-flight requests finish before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Where the receiver listens and how large a request may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// OTLP/gRPC listen address (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address (port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// Largest accepted request body, compressed or decompressed, for both protocols.
    pub max_body_bytes: usize,
    /// Bytes of bodies decoded at once, both protocols together; beyond, requests are refused
    /// with a retryable status (see `budget`).
    pub in_flight_bytes: usize,
}

impl Default for ReceiverConfig {
    /// The OTLP default ports, 4317 and 4318, on loopback only.
    fn default() -> Self {
        ReceiverConfig {
            grpc_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 4317)),
            http_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 4318)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            in_flight_bytes: DEFAULT_IN_FLIGHT_BYTES,
        }
    }
}

impl ReceiverConfig {
    /// Both servers on free loopback ports, as tests and embedded runs want.
    pub fn ephemeral() -> Self {
        ReceiverConfig {
            grpc_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            http_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            in_flight_bytes: DEFAULT_IN_FLIGHT_BYTES,
        }
    }
}

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A listen address could not be bound.
    #[error("{}", bind_message(protocol, flag, addr, source))]
    Bind {
        /// `OTLP/gRPC` or `OTLP/HTTP`.
        protocol: &'static str,
        /// The command-line flag that sets this address.
        flag: &'static str,
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
}

fn bind_message(protocol: &str, flag: &str, addr: &SocketAddr, source: &io::Error) -> String {
    let free = SocketAddr::new(addr.ip(), 0);
    if source.kind() == io::ErrorKind::AddrInUse {
        format!(
            "cannot start the {protocol} receiver: port {} in use: pass {flag} {free} to pick a \
             free port, or stop the program holding it (often a local OpenTelemetry Collector)",
            addr.port()
        )
    } else {
        format!("cannot start the {protocol} receiver on {addr}: {source}")
    }
}

/// The running OTLP/gRPC and OTLP/HTTP servers.
///
/// Dropping it stops both servers without waiting; [`Receiver::shutdown`] waits for in-flight
/// requests.
#[derive(Debug)]
pub struct Receiver {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    /// Tells both servers to stop accepting; without it they would run until the runtime ends.
    stop: CancellationToken,
    servers: Vec<JoinHandle<()>>,
}

/// Both listeners bound, nothing served yet: a caller can bind first, so that a port in use
/// fails before anything else is set up, and serve once the store exists.
#[derive(Debug)]
pub struct BoundReceiver {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    max_body_bytes: usize,
    in_flight_bytes: usize,
}

impl BoundReceiver {
    /// The bound OTLP/gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound OTLP/HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves both listeners into `store`.
    pub fn serve(self, store: Arc<TraceStore>) -> Receiver {
        Receiver::serve(self, store)
    }
}

impl Receiver {
    /// Binds both addresses, then serves them on the current tokio runtime. Nothing is served
    /// unless both binds succeed.
    pub async fn start(
        config: ReceiverConfig,
        store: Arc<TraceStore>,
    ) -> Result<Receiver, ReceiverError> {
        Ok(Self::bind(&config).await?.serve(store))
    }

    /// Binds both addresses without serving them yet.
    pub async fn bind(config: &ReceiverConfig) -> Result<BoundReceiver, ReceiverError> {
        let bind_error = |protocol, flag, addr| {
            move |source| ReceiverError::Bind {
                protocol,
                flag,
                addr,
                source,
            }
        };
        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(bind_error("OTLP/gRPC", "--otlp-grpc", config.grpc_addr))?;
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(bind_error("OTLP/HTTP", "--otlp-http", config.http_addr))?;
        let grpc_addr = grpc_listener.local_addr().map_err(bind_error(
            "OTLP/gRPC",
            "--otlp-grpc",
            config.grpc_addr,
        ))?;
        let http_addr = http_listener.local_addr().map_err(bind_error(
            "OTLP/HTTP",
            "--otlp-http",
            config.http_addr,
        ))?;
        Ok(BoundReceiver {
            grpc_listener,
            http_listener,
            grpc_addr,
            http_addr,
            max_body_bytes: config.max_body_bytes,
            in_flight_bytes: config.in_flight_bytes,
        })
    }

    fn serve(bound: BoundReceiver, store: Arc<TraceStore>) -> Receiver {
        let BoundReceiver {
            grpc_listener,
            http_listener,
            grpc_addr,
            http_addr,
            max_body_bytes,
            in_flight_bytes,
        } = bound;
        let config = ReceiverConfig {
            grpc_addr,
            http_addr,
            max_body_bytes,
            in_flight_bytes,
        };
        let stop = CancellationToken::new();
        // One budget for both protocols: memory is one resource, whichever port a body came in.
        let budget = Budget::new(config.in_flight_bytes);
        let grpc_service = grpc::service(Arc::clone(&store), config.max_body_bytes, budget.clone());
        let incoming = TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
        let grpc_stop = stop.clone().cancelled_owned();
        let grpc_server = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(grpc_service)
                .serve_with_incoming_shutdown(incoming, grpc_stop)
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the OTLP/gRPC receiver stopped");
            }
        });

        let app = http::router_with_budget(store, config.max_body_bytes, budget);
        let http_server = tokio::spawn(tracelab_net::serve(
            http_listener,
            app,
            tracelab_net::Limits::default(),
            stop.clone(),
        ));

        tracing::info!(%grpc_addr, %http_addr, "OTLP receiver listening");
        Receiver {
            grpc_addr,
            http_addr,
            stop,
            servers: vec![grpc_server, http_server],
        }
    }

    /// The bound OTLP/gRPC address (with the real port when 0 was asked for).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound OTLP/HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The gRPC endpoint for an OTLP exporter, e.g. `http://127.0.0.1:4317`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The full OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub fn http_traces_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.http_addr)
    }

    /// Stops accepting connections and waits for in-flight requests to finish (at most ten
    /// seconds, after which the servers are aborted).
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        let servers = std::mem::take(&mut self.servers);
        for server in servers {
            let abort = server.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
                tracing::warn!("OTLP receiver did not stop within {SHUTDOWN_GRACE:?}; aborting");
                abort.abort();
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
