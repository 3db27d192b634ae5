//! Statistical comparisons of replicate distributions.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Welch's two-sample t-test (unequal variances).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Welch {
    /// mean(a) - mean(b)
    pub difference: f64,
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
    let df = se2 * se2 / (sa * sa / (a.len() - 1) as f64 + sb * sb / (b.len() - 1) as f64);
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = 2.0 * (1.0 - dist.cdf(t.abs()));
    Some(Welch { difference: ma - mb, t, df, p })
}

/// Mean and sample variance (n - 1).
fn mean_var(xs: &[f64]) -> (f64, f64) {
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
    fn undefined_cases() {
        assert!(welch(&[1.0], &[1.0, 2.0]).is_none());
        assert!(welch(&[1.0, 1.0], &[1.0, 1.0]).is_none());
    }
}
