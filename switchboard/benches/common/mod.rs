//! What the benchmark binaries share.

use std::time::Instant;

/// Median nanoseconds per call over `samples` batches of `batch` calls,
/// after a warm-up of ten batches.
pub fn measure(mut f: impl FnMut(), batch: u32, samples: usize) -> f64 {
    for _ in 0..batch * 10 {
        f();
    }
    let mut per_call: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[samples / 2]
}
