//! Labelled samples as device tensors, with Keras' validation split.

use candle_core::{DType, Device, Tensor};

use crate::error::{NnError, Result};

/// Samples `x` shaped `(n, sample...)` as f32 and class labels as u32 `(n,)`.
#[derive(Clone)]
pub struct Dataset {
    pub x: Tensor,
    pub labels: Tensor,
}

impl Dataset {
    /// Builds a dataset from 8-bit pixels, scaled to [0, 1] by /255 as the assignments do.
    pub fn from_u8(pixels: &[u8], labels: &[u8], sample_shape: &[usize], device: &Device) -> Result<Self> {
        let per_sample: usize = sample_shape.iter().product();
        if per_sample == 0 || pixels.len() != labels.len() * per_sample {
            return Err(NnError::Data(format!(
                "{} pixel values do not make {} samples of shape {sample_shape:?}",
                pixels.len(),
                labels.len()
            )));
        }
        let mut shape = vec![labels.len()];
        shape.extend_from_slice(sample_shape);
        let x: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
        let labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let n = labels.len();
        Ok(Dataset { x: Tensor::from_vec(x, shape, device)?, labels: Tensor::from_vec(labels, n, device)? })
    }

    pub fn len(&self) -> usize {
        self.labels.dims1().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` samples starting at `start`.
    pub fn slice(&self, start: usize, len: usize) -> Result<Self> {
        if start + len > self.len() {
            return Err(NnError::Data(format!("slice {start}..{} of a dataset of {}", start + len, self.len())));
        }
        Ok(Dataset { x: self.x.narrow(0, start, len)?, labels: self.labels.narrow(0, start, len)? })
    }

    /// Keras' `validation_split`: the LAST `fraction` of the samples, before any shuffling, are held
    /// out; returns (train, validation). Keras splits at floor(n · (1 - fraction)).
    pub fn split_last(&self, fraction: f64) -> Result<(Self, Self)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(NnError::spec("validation_split", format!("must be in (0, 1), got {fraction}")));
        }
        let n = self.len();
        let split_at = (n as f64 * (1.0 - fraction)).floor() as usize;
        if split_at == 0 || split_at == n {
            return Err(NnError::Data(format!("validation_split {fraction} of {n} samples leaves an empty part")));
        }
        Ok((self.slice(0, split_at)?, self.slice(split_at, n - split_at)?))
    }

    /// Rows `indices` (in that order) as a batch.
    pub fn gather(&self, indices: &[u32]) -> Result<Self> {
        let idx = Tensor::from_slice(indices, indices.len(), self.x.device())?;
        Ok(Dataset { x: self.x.index_select(&idx, 0)?, labels: self.labels.index_select(&idx, 0)? })
    }

    /// The samples reshaped to a model's input shape (e.g. 28×28×1 images as 784-vectors).
    pub fn reshaped(&self, sample_shape: &[usize]) -> Result<Self> {
        let mut shape = vec![self.len()];
        shape.extend_from_slice(sample_shape);
        let per_sample: usize = sample_shape.iter().product();
        if per_sample * self.len() != self.x.elem_count() {
            return Err(NnError::Data(format!(
                "samples of shape {:?} cannot be fed to a model whose input is {sample_shape:?}",
                &self.x.dims()[1..]
            )));
        }
        Ok(Dataset { x: self.x.reshape(shape)?, labels: self.labels.clone() })
    }

    pub fn labels_vec(&self) -> Result<Vec<u32>> {
        Ok(self.labels.to_dtype(DType::U32)?.to_vec1()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> Dataset {
        let pixels: Vec<u8> = (0..n as u8).flat_map(|i| [i, i]).collect();
        let labels: Vec<u8> = (0..n as u8).collect();
        Dataset::from_u8(&pixels, &labels, &[2], &Device::Cpu).unwrap()
    }

    #[test]
    fn validation_split_holds_out_the_last_fifth() {
        let (train, val) = numbered(10).split_last(0.2).unwrap();
        assert_eq!(train.labels_vec().unwrap(), (0..8).collect::<Vec<u32>>());
        assert_eq!(val.labels_vec().unwrap(), vec![8, 9]);
        // Keras floors the split point: 60000 · 0.8 = 48000; 11 · 0.8 = 8.8 → 8.
        let (train, val) = numbered(11).split_last(0.2).unwrap();
        assert_eq!((train.len(), val.len()), (8, 3));
    }

    #[test]
    fn pixels_are_scaled_and_mismatches_rejected() {
        let d = Dataset::from_u8(&[0, 255, 51, 102], &[1, 2], &[2], &Device::Cpu).unwrap();
        assert_eq!(d.x.to_vec2::<f32>().unwrap(), vec![vec![0.0, 1.0], vec![0.2, 0.4]]);
        assert!(Dataset::from_u8(&[0, 1, 2], &[1, 2], &[2], &Device::Cpu).is_err());
        assert!(d.reshaped(&[3]).is_err());
        assert!(numbered(4).split_last(1.0).is_err());
    }

    #[test]
    fn gather_takes_rows_in_order() {
        let d = numbered(5).gather(&[4, 0, 2]).unwrap();
        assert_eq!(d.labels_vec().unwrap(), vec![4, 0, 2]);
        assert_eq!(d.x.dims(), &[3, 2]);
    }
}
