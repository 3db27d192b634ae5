//! Statistical comparisons of replicate distributions.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Welch's two-sample t-test (unequal variances).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Welch {
    /// mean(a) - mean(b)
    pub difference: f64,
    /// Standard error of the difference.
    pub se: f64,
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Returns `None` when the test is undefined: fewer than two values on a side, or no variance at all.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let se2 = sa + sb;
    if se2 <= 0.0 {
        return None;
    }
    let t = (ma - mb) / se2.sqrt();
    let df = satterthwaite(sa, a.len(), sb, b.len());
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = 2.0 * (1.0 - dist.cdf(t.abs()));
    Some(Welch { difference: ma - mb, se: se2.sqrt(), t, df, p })
}

/// Welch–Satterthwaite degrees of freedom of a sum of two squared standard errors `sa` and `sb`
/// estimated from `na` and `nb` values.
fn satterthwaite(sa: f64, na: usize, sb: f64, nb: usize) -> f64 {
    (sa + sb).powi(2) / (sa * sa / (na - 1) as f64 + sb * sb / (nb - 1) as f64)
}

/// A 95% interval for mean(a) − mean(b), on Welch's degrees of freedom; `None` where the test is
/// undefined.
pub fn difference_interval(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let w = welch(a, b)?;
    let half = t_quantile(w.df)? * w.se;
    Some((w.difference - half, w.difference + half))
}

/// The ratio mean(b) / mean(a) with a 95% interval and a two-sided p-value for "the ratio is 1",
/// both taken on the log scale (delta method, Welch's degrees of freedom), so that they agree with
/// each other, the interval stays positive, and a 2× speed-up and a 2× slow-down are symmetric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioTest {
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    pub p: f64,
}

/// `None` for non-positive means, fewer than two values on a side, or no variance at all.
pub fn ratio_test(a: &[f64], b: &[f64]) -> Option<RatioTest> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    if ma <= 0.0 || mb <= 0.0 {
        return None;
    }
    // Relative squared standard errors: the variances of log(mean) to first order.
    let (ra, rb) = (va / a.len() as f64 / (ma * ma), vb / b.len() as f64 / (mb * mb));
    let se2 = ra + rb;
    if se2 <= 0.0 {
        return None;
    }
    let dist = StudentsT::new(0.0, 1.0, satterthwaite(ra, a.len(), rb, b.len())).ok()?;
    let log_ratio = (mb / ma).ln();
    let half = dist.inverse_cdf(0.975) * se2.sqrt();
    let p = 2.0 * (1.0 - dist.cdf(log_ratio.abs() / se2.sqrt()));
    Some(RatioTest { ratio: mb / ma, low: (log_ratio - half).exp(), high: (log_ratio + half).exp(), p })
}

/// The interval in which one new replicate should fall 95% of the time, given `xs`:
/// mean ± t(n−1)·s·√(1 + 1/n). `None` for fewer than two values.
pub fn prediction_interval(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.len() < 2 {
        return None;
    }
    let (mean, var) = mean_var(xs);
    prediction_interval_of(mean, var.sqrt(), xs.len())
}

/// Same for a summary (mean, sample std, n) when the values themselves are not at hand.
pub fn prediction_interval_of(mean: f64, std: f64, n: usize) -> Option<(f64, f64)> {
    if n < 2 || !std.is_finite() {
        return None;
    }
    let half = t_quantile(n as f64 - 1.0)? * std * (1.0 + 1.0 / n as f64).sqrt();
    Some((mean - half, mean + half))
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom.
fn t_quantile(df: f64) -> Option<f64> {
    Some(StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(0.975))
}

/// Mean and sample variance (n - 1).
pub fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_a_hand_worked_example() {
        // a: mean 2, var 1; b: mean 5, var 1; se² = 1/3 + 1/3; t = -3 / sqrt(2/3) = -3.674; df = 4.
        let w = welch(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((w.t + 3.674_234_614).abs() < 1e-6);
        assert!((w.df - 4.0).abs() < 1e-9);
        // Two-sided p for t = 3.674 with 4 df is 0.02131 (t tables).
        assert!((w.p - 0.02131).abs() < 2e-4, "{}", w.p);
        assert_eq!(w.difference, -3.0);
    }

    #[test]
    fn difference_interval_is_t_times_the_standard_error() {
        // Same data as above: se = sqrt(2/3) = 0.8165, t(0.975, 4) = 2.7764 → half-width 2.2669.
        let (lo, hi) = difference_interval(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((lo + 5.2669).abs() < 1e-3 && (hi + 0.7331).abs() < 1e-3, "{lo} {hi}");
    }

    #[test]
    fn equal_means_have_an_interval_around_zero() {
        let (lo, hi) = difference_interval(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!(lo < 0.0 && hi > 0.0 && (lo + hi).abs() < 1e-12, "{lo} {hi}");
    }

    #[test]
    fn ratio_interval_is_symmetric_on_the_log_scale() {
        let RatioTest { ratio, low, high, p } = ratio_test(&[99.0, 100.0, 101.0], &[198.0, 200.0, 202.0]).unwrap();
        assert!((ratio - 2.0).abs() < 1e-12);
        assert!(low < 2.0 && high > 2.0 && ((ratio / low) - (high / ratio)).abs() < 1e-12, "{low} {high}");
        assert!(p < 1e-4, "{p}");
        // The p-value and the interval tell the same story: 1 inside the interval ⇔ p ≥ 0.05.
        for b in [[100.0, 104.0, 108.0], [104.0, 108.0, 112.0], [110.0, 114.0, 118.0]] {
            let test = ratio_test(&[99.0, 100.0, 101.0], &b).unwrap();
            assert_eq!(test.low <= 1.0 && 1.0 <= test.high, test.p >= 0.05, "{test:?}");
        }
        assert!(ratio_test(&[0.0, 0.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn prediction_interval_widens_the_spread_by_one_new_draw() {
        // mean 2, s 1, n 3: t(0.975, 2) = 4.3027, √(4/3) = 1.1547 → half-width 4.9683.
        let (lo, hi) = prediction_interval(&[1.0, 2.0, 3.0]).unwrap();
        assert!((lo + 2.9683).abs() < 1e-3 && (hi - 6.9683).abs() < 1e-3, "{lo} {hi}");
        assert_eq!(prediction_interval_of(2.0, 1.0, 3), Some((lo, hi)));
        assert!(prediction_interval(&[1.0]).is_none());
    }

    #[test]
    fn undefined_cases() {
        assert!(welch(&[1.0], &[1.0, 2.0]).is_none());
        assert!(welch(&[1.0, 1.0], &[1.0, 1.0]).is_none());
    }
}
