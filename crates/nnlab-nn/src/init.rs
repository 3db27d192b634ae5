//! Seeded weight initialisation. candle's own initialisers draw from an unseeded thread RNG, so every
//! weight is drawn here on the host from the job's seeded stream, in layer order.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Glorot (Xavier) uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), Keras' default kernel init.
pub fn glorot_uniform(rng: &mut ChaCha8Rng, fan_in: usize, fan_out: usize, count: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    (0..count).map(|_| rng.random_range(-limit..limit)).collect()
}

/// An independent random stream of a job's seed: stream 0 initialises weights, stream 1 drives the
/// training (shuffles, dropout, noise), so adding a dropout layer does not change the initial weights.
pub fn rng_stream(seed: u64, stream: u64) -> ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn glorot_is_bounded_seeded_and_roughly_centred() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        let xs = glorot_uniform(&mut a, 784, 256, 784 * 256);
        assert_eq!(xs, glorot_uniform(&mut b, 784, 256, 784 * 256));
        let limit = (6.0f32 / 1040.0).sqrt();
        assert!(xs.iter().all(|x| x.abs() <= limit));
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 1e-3, "mean {mean}");
        // Uniform on [-l, l] has variance l²/3.
        let var = xs.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((var / (limit as f64).powi(2) - 1.0 / 3.0).abs() < 0.01, "var {var}");
    }
}
