//! The `empirical` latency model: a table of quantiles, read by linear interpolation.
//!
//! Drawing a uniform probability `u` and reading the time at `u` off the table is inverse
//! transform sampling: the draws follow the table's distribution exactly at its points and
//! linearly between them, whatever the shape (two humps, a cliff at a timeout, a flat floor).

/// The time at probability `u` (0 to 1), interpolated between the table's neighbouring
/// points; `None` for a table that validation rejects (see [`problem`]).
pub(super) fn quantile(table: &[(f64, f64)], u: f64) -> Option<f64> {
    if problem(table).is_some() || !(0.0..=1.0).contains(&u) {
        return None;
    }
    // The first point whose probability is above `u`; the segment ends there.
    let upper = table.partition_point(|&(p, _)| p <= u).min(table.len() - 1);
    let (p1, ms1) = table[upper];
    let (p0, ms0) = table[upper.saturating_sub(1)];
    if p1 <= p0 {
        return Some(ms1);
    }
    Some(ms0 + (ms1 - ms0) * (u - p0) / (p1 - p0))
}

/// The mean of the table's distribution: each segment contributes its probability times the
/// midpoint of its times. `None` for a table that validation rejects.
pub(super) fn mean(table: &[(f64, f64)]) -> Option<f64> {
    if problem(table).is_some() {
        return None;
    }
    Some(
        table
            .windows(2)
            .map(|pair| (pair[1].0 - pair[0].0) * (pair[0].1 + pair[1].1) / 2.0)
            .sum(),
    )
}

/// What is wrong with a table, if anything: the index of the offending pair (or `None` for
/// the table as a whole) and a sentence saying what to change.
pub(crate) fn problem(table: &[(f64, f64)]) -> Option<(Option<usize>, String)> {
    if table.len() < 2 {
        return Some((
            None,
            format!(
                "an empirical model needs at least two quantiles ([0, shortest] and [1, longest]), found {}",
                table.len()
            ),
        ));
    }
    for (i, &(p, ms)) in table.iter().enumerate() {
        if !p.is_finite() || !(0.0..=1.0).contains(&p) {
            return Some((Some(i), format!("p must be between 0 and 1, found {p}")));
        }
        if !ms.is_finite() || ms < 0.0 {
            return Some((
                Some(i),
                format!("the time must be a finite number of at least 0 ms, found {ms}"),
            ));
        }
        if i > 0 {
            let (p0, ms0) = table[i - 1];
            if p <= p0 {
                return Some((
                    Some(i),
                    format!("p must rise from one pair to the next, found {p} after {p0}"),
                ));
            }
            if ms < ms0 {
                return Some((
                    Some(i),
                    format!("the times must not fall, found {ms} ms after {ms0} ms"),
                ));
            }
        }
    }
    let first = table[0].0;
    let last = table[table.len() - 1].0;
    if first != 0.0 {
        return Some((
            Some(0),
            format!("the first pair must be at p = 0 (the shortest time), found {first}"),
        ));
    }
    if last != 1.0 {
        return Some((
            Some(table.len() - 1),
            format!("the last pair must be at p = 1 (the longest time), found {last}"),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[(f64, f64)] = &[(0.0, 1.0), (0.5, 2.0), (0.9, 4.0), (1.0, 14.0)];

    #[test]
    fn quantiles_interpolate_between_points() {
        assert_eq!(quantile(TABLE, 0.0), Some(1.0));
        assert_eq!(quantile(TABLE, 0.25), Some(1.5));
        assert_eq!(quantile(TABLE, 0.5), Some(2.0));
        assert_eq!(quantile(TABLE, 0.7), Some(3.0));
        assert!((quantile(TABLE, 0.95).unwrap() - 9.0).abs() < 1e-9);
        assert_eq!(quantile(TABLE, 1.0), Some(14.0));
    }

    #[test]
    fn the_mean_is_the_area_under_the_table() {
        // 0.5 × 1.5 + 0.4 × 3 + 0.1 × 9
        let expected = 0.75 + 1.2 + 0.9;
        assert!((mean(TABLE).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn broken_tables_are_named_and_draw_nothing() {
        for (table, index, words) in [
            (&[(0.0, 1.0)][..], None, "at least two"),
            (
                &[(0.0, 1.0), (0.5, 0.5), (1.0, 2.0)][..],
                Some(1),
                "must not fall",
            ),
            (
                &[(0.0, 1.0), (0.0, 1.0), (1.0, 2.0)][..],
                Some(1),
                "must rise",
            ),
            (&[(0.1, 1.0), (1.0, 2.0)][..], Some(0), "p = 0"),
            (&[(0.0, 1.0), (0.9, 2.0)][..], Some(1), "p = 1"),
            (&[(0.0, -1.0), (1.0, 2.0)][..], Some(0), "at least 0"),
            (
                &[(0.0, 1.0), (f64::NAN, 2.0)][..],
                Some(1),
                "between 0 and 1",
            ),
        ] {
            let (at, message) = problem(table).expect("a problem");
            assert_eq!(at, index, "{table:?}");
            assert!(message.contains(words), "{message}");
            assert_eq!(quantile(table, 0.5), None);
            assert_eq!(mean(table), None);
        }
    }
}
