//! The trivial HTTP endpoint of the load generator's benchmark: `GET /` answers `ok` at once.
//! It prints the address it listens on, then serves until killed.
//!
//! Run with `cargo run --release -p tracelab-loadgen --example trivial_server -- 127.0.0.1:8099`
//! (see `bench/loadgen-vs-wrk.sh`).

use axum::Router;
use axum::routing::get;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let threads = std::env::var("TRIVIAL_SERVER_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let app = Router::new().route("/", get(|| async { "ok" }));
        axum::serve(listener, app).await
    })
}
