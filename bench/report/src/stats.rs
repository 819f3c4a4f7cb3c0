//! Statistics over repeats: medians with spread, and percentile-bootstrap 95% confidence
//! intervals for a median and for a ratio of two medians.
//!
//! Written here rather than taken from a crate: the bootstrap is a dozen lines, and the crates
//! that offer it (criterion's internals, statrs) either do not expose it or bring far more.
//! Resampling uses a seeded ChaCha generator, so the same inputs give the same interval.

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use crate::model::Estimate;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 4_000;

/// The median (mean of the middle two for an even count); `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
}

fn resample_median(values: &[f64], rng: &mut ChaCha8Rng, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..values.len()).map(|_| values[rng.random_range(0..values.len())]));
    median(scratch)
}

/// The 2.5th and 97.5th percentiles of `draws`.
fn interval(mut draws: Vec<f64>) -> (f64, f64) {
    draws.retain(|x| x.is_finite());
    if draws.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((draws.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// Median, range and a bootstrap 95% interval of the median of `values`.
pub fn estimate(values: &[f64], seed: u64) -> Estimate {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        return Estimate { median: f64::NAN, min: f64::NAN, max: f64::NAN, ci_low: f64::NAN, ci_high: f64::NAN, n: 0 };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scratch = Vec::with_capacity(finite.len());
    let draws = (0..RESAMPLES).map(|_| resample_median(&finite, &mut rng, &mut scratch)).collect();
    let (ci_low, ci_high) = interval(draws);
    Estimate {
        median: median(&finite),
        min: finite.iter().copied().fold(f64::INFINITY, f64::min),
        max: finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ci_low,
        ci_high,
        n: finite.len(),
    }
}

/// `median(a) / median(b)` with a bootstrap 95% interval (each side resampled on its own).
/// Returns `None` when either side is empty or `b`'s median is zero.
pub fn ratio(a: &[f64], b: &[f64], seed: u64) -> Option<(f64, f64, f64)> {
    let a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    if a.is_empty() || b.is_empty() || median(&b) == 0.0 {
        return None;
    }
    let point = median(&a) / median(&b);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    let draws = (0..RESAMPLES)
        .map(|_| {
            let den = resample_median(&b, &mut rng, &mut sb);
            if den == 0.0 { f64::NAN } else { resample_median(&a, &mut rng, &mut sa) / den }
        })
        .collect();
    let (low, high) = interval(draws);
    Some((point, low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn the_interval_covers_the_median_and_stays_within_the_range() {
        let values = [98.0, 101.0, 100.0, 103.0, 99.0];
        let e = estimate(&values, 7);
        assert_eq!(e.median, 100.0);
        assert!(e.ci_low <= e.median && e.median <= e.ci_high, "{e:?}");
        assert!(e.ci_low >= 98.0 && e.ci_high <= 103.0, "{e:?}");
        assert_eq!(estimate(&values, 7), e, "seeded: the same inputs give the same interval");
    }

    #[test]
    fn a_clear_difference_gives_a_ratio_interval_that_excludes_one() {
        let a = [80.0, 81.0, 79.5, 80.5];
        let b = [100.0, 101.0, 99.0, 100.5];
        let (r, lo, hi) = ratio(&a, &b, 1).expect("both sides present");
        assert!((r - 0.8).abs() < 0.01, "{r}");
        assert!(hi < 1.0 && lo > 0.75, "[{lo}, {hi}]");
        let (_, lo, hi) = ratio(&b, &[101.0, 99.0, 100.0, 98.0], 1).expect("present");
        assert!(lo <= 1.0 && hi >= 1.0, "overlapping samples straddle 1: [{lo}, {hi}]");
    }
}
