//! The receiving half of the ingest benchmark: an OTLP receiver (gRPC and HTTP) into an
//! in-memory `TraceStore`, in a process of its own so that it can be pinned to one core and
//! its memory read from outside.
//!
//! Run with `bash bench/receiver-ingest.sh`, which pins it with `taskset -c 0` and drives it
//! with `ingest_sender`. By hand:
//! `cargo run --release -p tracelab-receiver --example ingest_receiver -- 127.0.0.1:14317 127.0.0.1:14318 [SINK_FILE]`
//! It prints `ready` once both ports listen and stops when its standard input closes.

use std::net::SocketAddr;
use std::sync::Arc;

use tracelab_receiver::{Receiver, ReceiverConfig, SpanSink, TraceStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(grpc), Some(http)) = (args.first(), args.get(1)) else {
        return Err("usage: ingest_receiver GRPC_ADDR HTTP_ADDR [SINK_FILE]".into());
    };
    let grpc: SocketAddr = grpc.parse()?;
    let http: SocketAddr = http.parse()?;
    let sink = args.get(2).cloned();
    // The worker count follows the CPU affinity, so `taskset -c 0` gives one worker.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = Arc::new(match sink {
            Some(path) => TraceStore::with_sink(SpanSink::create(std::path::Path::new(&path))?),
            None => TraceStore::new(),
        });
        let receiver = Receiver::start(
            ReceiverConfig {
                grpc_addr: grpc,
                http_addr: http,
                ..ReceiverConfig::ephemeral()
            },
            store.clone(),
        )
        .await?;
        println!("ready");
        // Stop when the driver closes our standard input (or goes away).
        let _ = tokio::task::spawn_blocking(|| {
            use std::io::Read as _;
            std::io::stdin().read_to_end(&mut Vec::new())
        })
        .await;
        receiver.shutdown().await;
        let _ = store.flush_sink();
        let stats = store.stats();
        eprintln!(
            "ingest_receiver: stored {} spans from {} requests ({} bytes), rejected {} requests",
            store.span_count(),
            stats.requests_accepted,
            stats.bytes_received,
            stats.requests_rejected()
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
