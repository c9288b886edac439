use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let start = Instant::now();
        let mut rng = rand::rng();
        let mut t = start;
        while t < start + Duration::from_secs(8) {
            t += Duration::from_secs_f64(-(1.0 - rng.random::<f64>()).ln() / 200.0);
            tracelab_timer::sleep_until(t).await;
            for _ in 0..9 {
                let tx = tx.clone();
                let ms: f64 = rng.random_range(0.5..25.0);
                tokio::spawn(async move {
                    let target = Instant::now() + Duration::from_secs_f64(ms / 1000.0);
                    tracelab_timer::sleep_until(target).await;
                    let _ = tx
                        .send(Instant::now().saturating_duration_since(target).as_micros() as u64);
                });
            }
        }
        drop(tx);
        let mut v = vec![];
        while let Some(x) = rx.recv().await {
            v.push(x);
        }
        v.sort();
        println!(
            "n {} p50 {} p90 {} p99 {} max {}",
            v.len(),
            v[v.len() / 2],
            v[v.len() * 9 / 10],
            v[v.len() * 99 / 100],
            v[v.len() - 1]
        );
    });
}
