//! A model summary in the shape of Keras' `model.summary()`: layer (type), output shape, params.

use serde::Serialize;

use crate::error::Result;
use crate::spec::ModelSpec;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// `dense (Dense)`, as Keras prints it.
    pub layer: String,
    /// `(None, 256)`: the batch dimension is shown as `None`, as Keras does.
    pub output_shape: String,
    pub params: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub total_params: usize,
    /// Forward FLOPs per sample (2 × multiply-adds).
    pub flops_per_sample: usize,
}

impl Summary {
    pub fn of(spec: &ModelSpec) -> Result<Self> {
        let plan = spec.plan()?;
        let rows = plan
            .iter()
            .map(|l| SummaryRow {
                layer: format!("{} ({})", l.name, l.kind),
                output_shape: format!("(None, {})", l.output_shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
                params: l.params,
            })
            .collect();
        Ok(Summary {
            rows,
            total_params: plan.iter().map(|l| l.params).sum(),
            flops_per_sample: plan.iter().map(|l| l.flops).sum(),
        })
    }

    /// Plain-text table for the console.
    pub fn to_text(&self) -> String {
        let w0 = self.rows.iter().map(|r| r.layer.len()).max().unwrap_or(0).max(12);
        let w1 = self.rows.iter().map(|r| r.output_shape.len()).max().unwrap_or(0).max(12);
        let mut out = format!("{:<w0$}  {:<w1$}  {:>10}\n", "Layer (type)", "Output Shape", "Param #");
        for r in &self.rows {
            out += &format!("{:<w0$}  {:<w1$}  {:>10}\n", r.layer, r.output_shape, group_thousands(r.params));
        }
        out += &format!("Total params: {}\n", group_thousands(self.total_params));
        out
    }
}

/// `203530` → `203,530`, as Keras prints parameter counts.
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_like_keras() {
        let spec = ModelSpec::from_toml(
            "input = [28, 28, 1]\nlayers = [{ type = \"flatten\" }, { type = \"dense\", units = 256, activation = \"relu\" }, { type = \"dense\", units = 10, activation = \"softmax\" }]",
            "t",
        )
        .unwrap();
        let s = Summary::of(&spec).unwrap();
        assert_eq!(s.rows[0].layer, "flatten (Flatten)");
        assert_eq!(s.rows[0].output_shape, "(None, 784)");
        assert_eq!(s.rows[2].layer, "dense_1 (Dense)");
        assert_eq!(s.total_params, 203_530);
        assert_eq!(s.flops_per_sample, 2 * (784 * 256 + 256 * 10));
        assert!(s.to_text().contains("Total params: 203,530"));
    }

    #[test]
    fn thousands_grouping() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_199_882), "1,199,882");
    }
}
