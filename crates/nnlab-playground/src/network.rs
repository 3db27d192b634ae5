//! The Playground's network (`nn.ts`): fully connected layers of a handful of neurons, a tanh output
//! neuron, squared error, gradients accumulated example by example and applied every `batch size`
//! examples, regularisation applied at the update.
//!
//! Plain f64 loops, not tensors: a Playground network has tens of weights and learns one example at a
//! time, where a tensor library's per-operation overhead would cost more than the arithmetic, and the
//! Playground itself computes in f64 (JavaScript numbers).

use serde::{Deserialize, Serialize};

/// A neuron's activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Tanh,
    Relu,
    Sigmoid,
    Linear,
}

impl Activation {
    pub fn output(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Linear => x,
        }
    }

    /// The derivative at total input `x`, as the Playground computes it (ReLU's is 0 at 0).
    pub fn derivative(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => {
                let o = x.tanh();
                1.0 - o * o
            }
            Activation::Relu => {
                if x <= 0.0 {
                    0.0
                } else {
                    1.0
                }
            }
            Activation::Sigmoid => {
                let o = Activation::Sigmoid.output(x);
                o * (1.0 - o)
            }
            Activation::Linear => 1.0,
        }
    }

    /// [`Activation::derivative`] at total input `x` whose output `output` is already known: the same
    /// value, without computing tanh or the sigmoid again.
    fn derivative_given_output(self, x: f64, output: f64) -> f64 {
        match self {
            Activation::Tanh => 1.0 - output * output,
            Activation::Sigmoid => output * (1.0 - output),
            Activation::Relu | Activation::Linear => self.derivative(x),
        }
    }
}

/// The weight penalty, applied at each update (biases are never regularised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regularization {
    None,
    L1,
    L2,
}

impl Regularization {
    /// The penalty's derivative at weight `w` (L1: sign; L2: the weight, the penalty being w²/2).
    fn derivative(self, w: f64) -> f64 {
        match self {
            Regularization::None => 0.0,
            Regularization::L1 => {
                if w < 0.0 {
                    -1.0
                } else if w > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Regularization::L2 => w,
        }
    }
}

/// One fully connected layer: `weights[node * inputs + input]`.
#[derive(Debug, Clone, PartialEq)]
struct Layer {
    inputs: usize,
    weights: Vec<f64>,
    biases: Vec<f64>,
    /// Links an L1 step pushed across zero: fixed at 0, never updated again.
    dead: Vec<bool>,
    weight_gradients: Vec<f64>,
    bias_gradients: Vec<f64>,
    total_input: Vec<f64>,
    output: Vec<f64>,
    /// d error / d total input, and d error / d output, of each node for the example just
    /// back-propagated.
    input_derivative: Vec<f64>,
    output_derivative: Vec<f64>,
}

impl Layer {
    fn nodes(&self) -> usize {
        self.biases.len()
    }
}

/// A Playground network: `inputs` → hidden layers → one tanh output neuron.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    inputs: usize,
    activation: Activation,
    layers: Vec<Layer>,
    /// Examples back-propagated since the last update (the Playground's `numAccumulatedDers`, the same
    /// for every live link and node); it carries over an epoch's end when the batch does not divide
    /// the training set, as in the Playground.
    accumulated: usize,
}

/// The Playground's initial bias.
const INITIAL_BIAS: f64 = 0.1;

impl Network {
    /// Weights drawn as the Playground draws them, `random() − 0.5` link by link, layer by layer,
    /// node by node, input by input; biases 0.1.
    pub fn new(inputs: usize, hidden: &[usize], activation: Activation, random: &mut impl FnMut() -> f64) -> Network {
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        let mut previous = inputs;
        for &nodes in hidden.iter().chain(std::iter::once(&1)) {
            let weights = (0..nodes * previous).map(|_| random() - 0.5).collect();
            layers.push(Layer {
                inputs: previous,
                weights,
                biases: vec![INITIAL_BIAS; nodes],
                dead: vec![false; nodes * previous],
                weight_gradients: vec![0.0; nodes * previous],
                bias_gradients: vec![0.0; nodes],
                total_input: vec![0.0; nodes],
                output: vec![0.0; nodes],
                input_derivative: vec![0.0; nodes],
                output_derivative: vec![0.0; nodes],
            });
            previous = nodes;
        }
        Network { inputs, activation, layers, accumulated: 0 }
    }

    /// Weights plus biases.
    pub fn parameters(&self) -> usize {
        self.layers.iter().map(|l| l.weights.len() + l.biases.len()).sum()
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The output neuron's value for one input vector.
    pub fn forward(&mut self, input: &[f64]) -> f64 {
        assert_eq!(input.len(), self.inputs, "the network takes {} inputs", self.inputs);
        let last = self.layers.len() - 1;
        for index in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(index);
            let previous: &[f64] = if index == 0 { input } else { &before[index - 1].output };
            let layer = &mut rest[0];
            // Hidden neurons use the chosen activation; the output neuron is tanh (classification).
            let activation = if index == last { Activation::Tanh } else { self.activation };
            for node in 0..layer.nodes() {
                let row = &layer.weights[node * layer.inputs..(node + 1) * layer.inputs];
                let total = layer.biases[node] + row.iter().zip(previous).map(|(w, x)| w * x).sum::<f64>();
                layer.total_input[node] = total;
                layer.output[node] = activation.output(total);
            }
        }
        self.layers[last].output[0]
    }

    /// Accumulates the gradient of 0.5 (output − target)² for the example last passed to
    /// [`Network::forward`].
    pub fn backward(&mut self, input: &[f64], target: f64) {
        let last = self.layers.len() - 1;
        self.layers[last].output_derivative[0] = self.layers[last].output[0] - target;
        for index in (0..self.layers.len()).rev() {
            let activation = if index == last { Activation::Tanh } else { self.activation };
            let (before, rest) = self.layers.split_at_mut(index);
            let layer = &mut rest[0];
            let previous: &[f64] = if index == 0 { input } else { &before[index - 1].output };
            for node in 0..layer.nodes() {
                let d = layer.output_derivative[node]
                    * activation.derivative_given_output(layer.total_input[node], layer.output[node]);
                layer.input_derivative[node] = d;
                layer.bias_gradients[node] += d;
                let links = node * layer.inputs..(node + 1) * layer.inputs;
                for ((gradient, dead), x) in
                    layer.weight_gradients[links.clone()].iter_mut().zip(&layer.dead[links]).zip(previous)
                {
                    if !dead {
                        *gradient += d * x;
                    }
                }
            }
            if index > 0 {
                // d error / d output of each node of the layer below (dead links weigh 0).
                let below = &mut before[index - 1].output_derivative;
                for (i, slot) in below.iter_mut().enumerate() {
                    *slot = (0..layer.nodes())
                        .map(|node| layer.weights[node * layer.inputs + i] * layer.input_derivative[node])
                        .sum();
                }
            }
        }
        self.accumulated += 1;
    }

    /// Applies the accumulated mean gradient, then the penalty (derivative taken at the weight before
    /// this update, scaled by the rate but not by the batch); an L1 step across zero kills the link.
    pub fn update(&mut self, learning_rate: f64, regularization: Regularization, rate: f64) {
        if self.accumulated == 0 {
            return;
        }
        let n = self.accumulated as f64;
        for layer in &mut self.layers {
            for (bias, gradient) in layer.biases.iter_mut().zip(&mut layer.bias_gradients) {
                *bias -= learning_rate * *gradient / n;
                *gradient = 0.0;
            }
            for link in 0..layer.weights.len() {
                if layer.dead[link] {
                    continue;
                }
                let penalty = regularization.derivative(layer.weights[link]);
                let stepped = layer.weights[link] - learning_rate / n * layer.weight_gradients[link];
                let penalised = stepped - learning_rate * rate * penalty;
                if regularization == Regularization::L1 && stepped * penalised < 0.0 {
                    layer.weights[link] = 0.0;
                    layer.dead[link] = true;
                } else {
                    layer.weights[link] = penalised;
                }
                layer.weight_gradients[link] = 0.0;
            }
        }
        self.accumulated = 0;
    }

    /// Links an L1 step has killed.
    pub fn dead_links(&self) -> usize {
        self.layers.iter().map(|l| l.dead.iter().filter(|d| **d).count()).sum()
    }

    #[cfg(test)]
    fn set(&mut self, layer: usize, weights: &[f64], biases: &[f64]) {
        self.layers[layer].weights.copy_from_slice(weights);
        self.layers[layer].biases.copy_from_slice(biases);
    }

    #[cfg(test)]
    fn weights(&self, layer: usize) -> (&[f64], &[f64]) {
        (&self.layers[layer].weights, &self.layers[layer].biases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// 2 inputs → 1 hidden linear neuron → tanh output, weights set by hand.
    fn tiny(activation: Activation) -> Network {
        let mut net = Network::new(2, &[1], activation, &mut || 0.5);
        net.set(0, &[0.5, -0.25], &[0.1]);
        net.set(1, &[2.0], &[0.0]);
        net
    }

    #[test]
    fn initial_weights_are_uniform_around_zero_and_biases_a_tenth() {
        let mut values = [0.0, 1.0, 0.25].into_iter().cycle();
        let net = Network::new(2, &[3], Activation::Tanh, &mut || values.next().unwrap());
        assert_eq!(net.weights(0).0, &[-0.5, 0.5, -0.25, -0.5, 0.5, -0.25]);
        assert_eq!(net.weights(0).1, &[0.1, 0.1, 0.1]);
        assert_eq!(net.parameters(), 2 * 3 + 3 + 3 + 1);
    }

    #[test]
    fn forward_and_backward_by_hand() {
        let mut net = tiny(Activation::Linear);
        // hidden: 0.1 + 0.5·1 − 0.25·2 = 0.1; output: tanh(2·0.1) = tanh 0.2.
        let out = net.forward(&[1.0, 2.0]);
        assert!(close(out, 0.2f64.tanh()));
        net.backward(&[1.0, 2.0], 1.0);
        // d/d total_out = (o − 1)(1 − o²); d/d w_out = that · 0.1; d/d hidden = that · 2 (linear).
        let d_out = (out - 1.0) * (1.0 - out * out);
        assert!(close(net.layers[1].weight_gradients[0], d_out * 0.1));
        assert!(close(net.layers[1].bias_gradients[0], d_out));
        assert!(close(net.layers[0].weight_gradients[0], 2.0 * d_out * 1.0));
        assert!(close(net.layers[0].weight_gradients[1], 2.0 * d_out * 2.0));
        // The update takes the mean over the accumulated examples: two identical examples, same step.
        let mut twice = tiny(Activation::Linear);
        for _ in 0..2 {
            twice.forward(&[1.0, 2.0]);
            twice.backward(&[1.0, 2.0], 1.0);
        }
        net.update(0.5, Regularization::None, 0.0);
        twice.update(0.5, Regularization::None, 0.0);
        assert!(close(net.weights(0).0[1], -0.25 - 0.5 * 2.0 * d_out * 2.0));
        assert!(close(net.weights(1).1[0], -0.5 * d_out));
        for layer in 0..2 {
            for (a, b) in net.weights(layer).0.iter().zip(twice.weights(layer).0) {
                assert!(close(*a, *b));
            }
        }
    }

    #[test]
    fn the_derivative_from_the_output_is_the_derivative() {
        for activation in [Activation::Tanh, Activation::Relu, Activation::Sigmoid, Activation::Linear] {
            for x in [-3.0, -0.5, 0.0, 0.7, 4.0] {
                let from_output = activation.derivative_given_output(x, activation.output(x));
                assert_eq!(from_output.to_bits(), activation.derivative(x).to_bits(), "{activation:?} at {x}");
            }
        }
    }

    #[test]
    fn relu_has_no_gradient_at_or_below_zero() {
        let mut net = tiny(Activation::Relu);
        net.set(0, &[-1.0, 0.0], &[0.0]);
        net.forward(&[1.0, 1.0]);
        net.backward(&[1.0, 1.0], 1.0);
        assert_eq!(net.layers[0].weight_gradients, vec![0.0, 0.0]);
        assert!(net.layers[1].bias_gradients[0] != 0.0);
    }

    #[test]
    fn l2_shrinks_by_rate_times_the_old_weight_without_dividing_by_the_batch() {
        let mut net = tiny(Activation::Linear);
        net.forward(&[0.0, 0.0]);
        net.backward(&[0.0, 0.0], net.layers[1].output[0]); // zero error: only the penalty moves weights
        net.update(0.1, Regularization::L2, 0.5);
        // w − lr·rate·w = w·(1 − 0.05); biases untouched.
        assert!(close(net.weights(0).0[0], 0.5 * 0.95));
        assert!(close(net.weights(1).0[0], 2.0 * 0.95));
        assert!(close(net.weights(0).1[0], 0.1));
    }

    #[test]
    fn an_l1_step_across_zero_kills_the_link_for_good() {
        let mut net = tiny(Activation::Linear);
        net.set(0, &[0.01, -0.25], &[0.1]);
        net.forward(&[0.0, 0.0]);
        net.backward(&[0.0, 0.0], net.layers[1].output[0]);
        // 0.01 − 0.1·0.5·1 < 0: dead at 0; −0.25 + 0.05 = −0.2 survives.
        net.update(0.1, Regularization::L1, 0.5);
        assert_eq!(net.weights(0).0[0], 0.0);
        assert!(close(net.weights(0).0[1], -0.2));
        assert_eq!(net.dead_links(), 1);
        // Gradients no longer reach it.
        net.forward(&[1.0, 1.0]);
        net.backward(&[1.0, 1.0], 1.0);
        net.update(1.0, Regularization::L1, 0.0);
        assert_eq!(net.weights(0).0[0], 0.0);
    }

    #[test]
    fn update_without_examples_changes_nothing() {
        let mut net = tiny(Activation::Tanh);
        let before = net.clone();
        net.update(0.1, Regularization::L2, 1.0);
        assert_eq!(net, before);
    }
}
