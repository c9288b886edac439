//! Critical-path time kept by trace-duration bucket until the share windows are known.

/// Critical-path time per operation and per instance, summed over the traces of one duration bucket.
///
/// The share windows (typical, slowest) are only known once every trace has been seen, so the
/// critical-path time has to be kept until then. Keeping it per trace would make memory grow
/// with the run; keeping it per duration bucket bounds it by the spread of durations (256
/// buckets per doubling), and the buckets are fine enough (at most 1/256 of the duration) that
/// a window edge moves by at most that.
#[derive(Default)]
pub(super) struct BucketShares {
    /// Traces in the bucket.
    pub(super) traces: u64,
    /// Shortest and longest trace in the bucket, so that window edges are real durations.
    pub(super) min_ns: u64,
    pub(super) max_ns: u64,
    /// (operation id, nanoseconds), one entry per operation seen in the bucket.
    pub(super) critical_by_operation: Vec<(usize, u64)>,
    /// (instance tally, nanoseconds), one entry per instance seen in the bucket.
    pub(super) critical_by_instance: Vec<(usize, u64)>,
}

/// Adds `ns` to the entry of `key` in `tally`, making it when missing.
pub(super) fn add_to(tally: &mut Vec<(usize, u64)>, key: usize, ns: u64) {
    match tally.iter_mut().find(|(k, _)| *k == key) {
        Some((_, total)) => *total += ns,
        None => tally.push((key, ns)),
    }
}

/// Significant bits a duration keeps in its bucket key: 9 bits, a relative width of 1/256.
const BUCKET_BITS: u32 = 9;

/// The bucket of a duration: the duration with all but its top [`BUCKET_BITS`] bits cleared.
pub(super) fn duration_bucket(ns: u64) -> u64 {
    let shift = (u64::BITS - ns.leading_zeros()).saturating_sub(BUCKET_BITS);
    (ns >> shift) << shift
}
