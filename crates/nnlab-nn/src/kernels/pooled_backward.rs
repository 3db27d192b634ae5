//! The backward pass of a convolution fused with the max-pooling after it, computed from the
//! pooled gradient alone.
//!
//! Max-pooling passes each window's gradient to the one position of its maximum, so the map's
//! gradient `grad_z` is zero everywhere else: with 2×2 windows at least three quarters of it (more
//! where a ReLU's output is 0). The dense backward multiplies all those zeros; this one visits only
//! the maxima. For filter `f` and a window whose maximum lies at output position `(y, x)` with
//! gradient `v` (the pooled gradient through the activation):
//!
//! - `grad_W[f][c][i][j] += v · input[c][y + i - top][x + j - left]`,
//! - `grad_input[c][y + i - top][x + j - left] += v · W[f][c][i][j]`, and `grad_b[f] += v`.
//!
//! Both are runs of multiply-adds over contiguous memory once the input, the kernel and the input
//! gradient are held channels-last (`H × W × C`, zero-padded): for each kernel row `i` the taps
//! `(j, c)` form one run of `kw · C` values, in the kernel as in the input. Each item's input is
//! rearranged so on entry and its input gradient back on exit.
//!
//! For `a1.cnn`'s second layer this is a quarter of the dense products' multiply-adds (fewer
//! where a ReLU outputs 0), with no im2col, no col2im and no map-sized gradient.
//!
//! Every sum is taken in a fixed order (a kernel gradient value over its filter's windows in row
//! order; an input gradient value over rows of windows, then positions, then filters; items in
//! fixed chunks, chunks in order), so the result does not depend on the thread count. Each
//! multiply-add is a multiplication and then an addition, never a fused one, and each value's
//! terms come in the same order in every code path, so it does not depend on the vector width either.

use super::activation::Pointwise;
use super::conv::{sum_over_chunks, ConvGrads};
use super::im2col::ConvGeometry;
use super::pool::PoolGeometry;
use super::with_scratch;

/// What the forward pass left for the backward pass of a fused convolution and max-pooling, for
/// the whole batch: the pooled (activated) values, the gradient arriving at them, and for each the
/// position of its window's maximum within its map plane.
pub(super) struct PooledMaxima<'a> {
    pub pooled: &'a [f32],
    pub grad: &'a [f32],
    pub argmax: &'a [u32],
}

/// All gradients of `max_pool(act(conv(x, kernel) + bias))` from the pooled gradient; the input
/// gradient only `with_input`.
pub(super) fn backward_from_maxima(
    g: &ConvGeometry,
    p: &PoolGeometry,
    act: Pointwise,
    [x, kernel]: [&[f32]; 2],
    maxima: &PooledMaxima<'_>,
    with_input: bool,
) -> ConvGrads {
    let layout = ChannelsLast::new(g);
    let kernel_last = layout.kernel_to_channels_last(kernel);
    let pooled_item = g.filters * p.output_plane();
    let chunk_grads = |first_item: usize, x: &[f32], mut grad_x: Option<&mut [f32]>| {
        let (mut grad_k, mut grad_b) = (vec![0.0f32; g.filters * g.taps()], vec![0.0f32; g.filters]);
        let (mut nonzeros, mut band) = (Nonzeros::default(), Band::default());
        with_scratch(2 * layout.padded_len(), |scratch| {
            let (x_last, grad_x_last) = scratch.split_at_mut(layout.padded_len());
            for (i, x) in x.chunks_exact(g.input_item()).enumerate() {
                let range = (first_item + i) * pooled_item..(first_item + i + 1) * pooled_item;
                let [pooled, grad] = [maxima.pooled, maxima.grad].map(|values| &values[range.clone()]);
                nonzeros.fill(p, act, [pooled, grad], &maxima.argmax[range], &mut grad_b);
                layout.to_channels_last(x, x_last);
                let grad_x_item = grad_x.as_deref_mut().map(|grad_x| &mut grad_x[i * g.input_item()..(i + 1) * g.input_item()]);
                if grad_x_item.is_some() {
                    grad_x_last.fill(0.0);
                }
                let input_grad = grad_x_item.is_some().then_some(&mut *grad_x_last);
                let (nonzeros, band, kernel_last) = (&nonzeros, &mut band, &kernel_last);
                ItemBackward {
                    layout: &layout,
                    pool: p,
                    nonzeros,
                    band,
                    x_last,
                    kernel_last,
                    grad_k: &mut grad_k,
                    grad_x_last: input_grad,
                }
                .run();
                if let Some(grad_x_item) = grad_x_item {
                    layout.unpad_from_channels_last(grad_x_last, grad_x_item);
                }
            }
        });
        (grad_k, grad_b)
    };
    let mut grads = sum_over_chunks(g, x, with_input, g.filters * g.taps(), chunk_grads);
    grads.kernel = layout.kernel_from_channels_last(&grads.kernel);
    grads
}

/// One item's nonzero map gradients `(v, position)`: for each window its pooled gradient through
/// the activation, `v`, at the position of its maximum in the map plane; filter by filter, and
/// within a filter row of windows by row of windows. Listed in one sweep in memory order, since
/// jumping from filter to filter in the pooled arrays would miss the cache at every step.
#[derive(Default)]
struct Nonzeros {
    entries: Vec<(f32, usize)>,
    /// Where the entries of filter `f`'s window row `r` start, at `f · rows + r`; then the end.
    starts: Vec<usize>,
    rows: usize,
}

impl Nonzeros {
    /// Lists one item's entries from its pooled values and their gradients and maxima
    /// (`F × pooled plane` each), and adds each filter's sum to `grad_b`.
    fn fill(&mut self, p: &PoolGeometry, act: Pointwise, [pooled, grad]: [&[f32]; 2], argmax: &[u32], grad_b: &mut [f32]) {
        self.rows = p.oh;
        self.starts.clear();
        // Every window is written and the count advances only past nonzero ones: a branch on
        // `v != 0` would be mispredicted about every other window behind a ReLU.
        self.entries.resize(pooled.len(), (0.0, 0));
        let mut len = 0;
        let planes = pooled
            .chunks_exact(p.output_plane())
            .zip(grad.chunks_exact(p.output_plane()))
            .zip(argmax.chunks_exact(p.output_plane()));
        for (((pooled, grad), argmax), grad_b) in planes.zip(grad_b) {
            let mut sum = 0.0;
            let rows = pooled.chunks_exact(p.ow).zip(grad.chunks_exact(p.ow)).zip(argmax.chunks_exact(p.ow));
            for ((pooled, grad), argmax) in rows {
                self.starts.push(len);
                for ((&out, &grad), &at) in pooled.iter().zip(grad).zip(argmax) {
                    let v = act.grad_z(out, grad);
                    self.entries[len] = (v, at as usize);
                    len += usize::from(v != 0.0);
                    // A skipped `v` is ±0, which leaves a sum that started at +0 unchanged.
                    sum += v;
                }
            }
            *grad_b += sum;
        }
        self.entries.truncate(len);
        self.starts.push(len);
    }

    #[inline]
    fn of(&self, f: usize, row: usize) -> &[(f32, usize)] {
        let at = f * self.rows + row;
        &self.entries[self.starts[at]..self.starts[at + 1]]
    }

    fn filters(&self) -> usize {
        (self.starts.len() - 1) / self.rows
    }
}

/// One row of windows' entries listed again, map position by map position; the buffers are kept
/// from one row to the next.
#[derive(Default)]
struct Band {
    /// `(v, filter)`, position by position over the band's map rows, filters in order.
    by_position: Vec<(f32, usize)>,
    position_starts: Vec<usize>,
    slots: Vec<usize>,
    /// The map position of the band's first value.
    first_position: usize,
}

impl Band {
    /// Sorts window row `row`'s entries by map position, counting sort: each position's count,
    /// its start from the counts, then each entry into its slot.
    fn fill(&mut self, nonzeros: &Nonzeros, p: &PoolGeometry, map_width: usize, row: usize) {
        self.first_position = row * p.strides[0] * map_width;
        self.position_starts.clear();
        self.position_starts.resize(p.pool[0] * map_width + 1, 0);
        let mut entries = 0;
        for f in 0..nonzeros.filters() {
            for &(_, at) in nonzeros.of(f, row) {
                self.position_starts[at - self.first_position + 1] += 1;
                entries += 1;
            }
        }
        for i in 1..self.position_starts.len() {
            self.position_starts[i] += self.position_starts[i - 1];
        }
        self.slots.clear();
        self.slots.extend_from_slice(&self.position_starts);
        self.by_position.resize(entries, (0.0, 0));
        for f in 0..nonzeros.filters() {
            for &(v, at) in nonzeros.of(f, row) {
                let slot = &mut self.slots[at - self.first_position];
                self.by_position[*slot] = (v, f);
                *slot += 1;
            }
        }
    }

    /// The band's map positions that have entries, each with its `(v, filter)` entries.
    fn positions(&self) -> impl Iterator<Item = (usize, &[(f32, usize)])> + '_ {
        let spans = self.position_starts.windows(2).enumerate().filter(|(_, span)| span[0] < span[1]);
        spans.map(|(position, span)| (self.first_position + position, &self.by_position[span[0]..span[1]]))
    }
}

/// One item's share of the backward pass: its nonzero map gradients and channels-last input, the
/// channels-last kernel, and where its gradients are added: `grad_k` (`F × kh × kw × C`) and, if
/// given, `grad_x_last` (the item's padded channels-last input gradient).
struct ItemBackward<'a> {
    layout: &'a ChannelsLast,
    pool: &'a PoolGeometry,
    nonzeros: &'a Nonzeros,
    band: &'a mut Band,
    x_last: &'a [f32],
    kernel_last: &'a [f32],
    grad_k: &'a mut [f32],
    grad_x_last: Option<&'a mut [f32]>,
}

impl ItemBackward<'_> {
    fn run(self) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { run_avx2(self) };
        }
        run_portable(self)
    }
}

/// [`run_portable`] compiled for 256-bit vectors: the same operations in the same order, so the
/// same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_avx2(work: ItemBackward<'_>) {
    run_portable(work)
}

/// One row of windows at a time, and within it one block of a kernel row at a time: the part of
/// the input (or of its gradient) under the row of windows and that block of every filter's
/// kernel (or kernel gradient) stay in the L1 cache, and each block's sum stays in registers while
/// the terms of one filter (or one position) are added.
#[inline(always)]
fn run_portable(work: ItemBackward<'_>) {
    let ItemBackward { layout, pool, nonzeros, band, x_last, kernel_last, grad_k, mut grad_x_last } = work;
    let (run, row_stride, taps) = (layout.run(), layout.row_stride(), layout.taps());
    for row in 0..pool.oh {
        let kernel_blocks =
            || (0..layout.g.kh).flat_map(|i| blocks(run).map(move |(start, len)| (i * run + start, i * row_stride + start, len)));
        if run < 32 {
            // Short kernel rows (a first layer's single channel): a filter's whole kernel gradient
            // is summed at once, window after window, rather than a kernel row per pass.
            for (f, grad_k) in grad_k.chunks_exact_mut(taps).enumerate() {
                let windows = nonzeros.of(f, row).iter().map(|&(v, at)| (v, layout.corners[at]));
                add_short_rows(grad_k, windows, x_last, layout.g.kh, run, row_stride);
            }
        } else {
            for (in_kernel, in_image, len) in kernel_blocks() {
                for (f, grad_k) in grad_k.chunks_exact_mut(taps).enumerate() {
                    let terms = nonzeros.of(f, row).iter().map(|&(v, at)| (v, &x_last[layout.corners[at] + in_image..][..len]));
                    add_products(&mut grad_k[in_kernel..][..len], terms);
                }
            }
        }
        if let Some(grad_x) = grad_x_last.as_deref_mut() {
            band.fill(nonzeros, pool, layout.g.ow, row);
            for (in_kernel, in_image, len) in kernel_blocks() {
                for (at, entries) in band.positions() {
                    let terms = entries.iter().map(|&(v, f)| (v, &kernel_last[f * taps + in_kernel..][..len]));
                    add_products(&mut grad_x[layout.corners[at] + in_image..][..len], terms);
                }
            }
        }
    }
}

/// `grad_k[i · run + j] += Σ v · x[corner + i · row_stride + j]` over `windows` `(v, corner)`, for
/// a kernel of `kh` rows of `run` values: each value's terms in window order, as the kernel-row
/// passes of [`run_portable`] add them, so the same bits; the common 3×3 and 5×5 single-channel
/// kernels with their loops unrolled.
#[inline(always)]
fn add_short_rows(
    grad_k: &mut [f32],
    windows: impl Iterator<Item = (f32, usize)>,
    x: &[f32],
    kh: usize,
    run: usize,
    row_stride: usize,
) {
    match (kh, run) {
        (3, 3) => add_short_rows_fixed::<3, 3>(grad_k, windows, x, row_stride),
        (5, 5) => add_short_rows_fixed::<5, 5>(grad_k, windows, x, row_stride),
        _ => {
            for (v, corner) in windows {
                for (i, grad_k) in grad_k.chunks_exact_mut(run).enumerate() {
                    let x = &x[corner + i * row_stride..][..run];
                    grad_k.iter_mut().zip(x).for_each(|(acc, &x)| *acc += v * x);
                }
            }
        }
    }
}

#[inline(always)]
fn add_short_rows_fixed<const KH: usize, const RUN: usize>(
    grad_k: &mut [f32],
    windows: impl Iterator<Item = (f32, usize)>,
    x: &[f32],
    row_stride: usize,
) {
    let mut sum = [[0.0f32; RUN]; KH];
    for (sum, grad_k) in sum.iter_mut().zip(grad_k.chunks_exact(RUN)) {
        sum.copy_from_slice(grad_k);
    }
    for (v, corner) in windows {
        for (i, sum) in sum.iter_mut().enumerate() {
            let x: &[f32; RUN] = x[corner + i * row_stride..][..RUN].try_into().expect("a kernel row");
            sum.iter_mut().zip(x).for_each(|(sum, &x)| *sum += v * x);
        }
    }
    for (sum, grad_k) in sum.iter().zip(grad_k.chunks_exact_mut(RUN)) {
        grad_k.copy_from_slice(sum);
    }
}

/// `0..len` cut into blocks `(start, len)` of 64 and 32 values, then what is left.
fn blocks(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let rest = len - start;
        let block = if rest >= 64 {
            64
        } else if rest >= 32 {
            32
        } else {
            rest
        };
        (block > 0).then(|| {
            start += block;
            (start - block, block)
        })
    })
}

/// `acc += Σ v · x` over `terms` `(v, x)`, term after term, each a separate multiplication and
/// addition (never a fused one). Blocks of 64 or 32 values are summed in registers throughout.
#[inline(always)]
fn add_products<'a>(acc: &mut [f32], terms: impl Iterator<Item = (f32, &'a [f32])>) {
    match acc.len() {
        64 => add_products_block::<64>(acc, terms),
        32 => add_products_block::<32>(acc, terms),
        _ => terms.for_each(|(v, x)| acc.iter_mut().zip(x).for_each(|(acc, &x)| *acc += v * x)),
    }
}

#[inline(always)]
fn add_products_block<'a, const N: usize>(acc: &mut [f32], terms: impl Iterator<Item = (f32, &'a [f32])>) {
    let acc: &mut [f32; N] = acc.try_into().expect("a block of N values");
    let mut sum = *acc;
    for (v, x) in terms {
        let x: &[f32; N] = x.try_into().expect("a term as long as its block");
        sum.iter_mut().zip(x).for_each(|(sum, &x)| *sum += v * x);
    }
    *acc = sum;
}

/// The channels-last arrangement of one convolution: items as zero-padded `HP × WP × C` images,
/// the kernel as `F × kh × kw × C`.
struct ChannelsLast {
    g: ConvGeometry,
    padded_width: usize,
    padded_height: usize,
    channels: usize,
    /// For each output position of the map, row after row, the index in the padded image of the
    /// first value under it.
    corners: Vec<usize>,
}

impl ChannelsLast {
    fn new(g: &ConvGeometry) -> Self {
        let [top, bottom, left, right] = g.pad;
        let padded_width = g.width + left + right;
        let corners = (0..g.oh).flat_map(|y| (0..g.ow).map(move |x| (y * padded_width + x) * g.channels)).collect();
        ChannelsLast { g: *g, padded_height: g.height + top + bottom, padded_width, channels: g.channels, corners }
    }

    fn padded_len(&self) -> usize {
        self.padded_height * self.padded_width * self.channels
    }

    /// Values between one padded pixel and the one below it.
    fn row_stride(&self) -> usize {
        self.padded_width * self.channels
    }

    /// Values in one kernel row, `kw · C`: contiguous in the kernel and in the input alike.
    fn run(&self) -> usize {
        self.g.kw * self.channels
    }

    fn taps(&self) -> usize {
        self.g.taps()
    }

    /// The index of input pixel `(row, col)` of channel 0 in the padded image.
    fn pixel(&self, row: usize, col: usize) -> usize {
        let [top, _, left, _] = self.g.pad;
        ((row + top) * self.padded_width + col + left) * self.channels
    }

    /// One item `C × H × W` into `padded` (`HP × WP × C`, padding zeroed).
    fn to_channels_last(&self, item: &[f32], padded: &mut [f32]) {
        if self.g.pad != [0; 4] {
            padded.fill(0.0);
        }
        let (h, w) = (self.g.height, self.g.width);
        for (c, plane) in item.chunks_exact(h * w).enumerate() {
            for (row, values) in plane.chunks_exact(w).enumerate() {
                let start = self.pixel(row, 0) + c;
                values.iter().enumerate().for_each(|(col, &v)| padded[start + col * self.channels] = v);
            }
        }
    }

    /// The inverse of [`Self::to_channels_last`], dropping the padding.
    fn unpad_from_channels_last(&self, padded: &[f32], item: &mut [f32]) {
        let (h, w) = (self.g.height, self.g.width);
        for (c, plane) in item.chunks_exact_mut(h * w).enumerate() {
            for (row, values) in plane.chunks_exact_mut(w).enumerate() {
                let start = self.pixel(row, 0) + c;
                values.iter_mut().enumerate().for_each(|(col, v)| *v = padded[start + col * self.channels]);
            }
        }
    }

    /// The kernel `F × C × kh × kw` as `F × kh × kw × C`.
    fn kernel_to_channels_last(&self, kernel: &[f32]) -> Vec<f32> {
        let mut last = vec![0.0; kernel.len()];
        self.for_each_kernel_index(|first, last_index| last[last_index] = kernel[first]);
        last
    }

    /// The inverse of [`Self::kernel_to_channels_last`].
    fn kernel_from_channels_last(&self, last: &[f32]) -> Vec<f32> {
        let mut kernel = vec![0.0; last.len()];
        self.for_each_kernel_index(|first, last_index| kernel[first] = last[last_index]);
        kernel
    }

    /// Calls `f(channels-first index, channels-last index)` for every kernel element.
    fn for_each_kernel_index(&self, mut f: impl FnMut(usize, usize)) {
        let ConvGeometry { filters, channels, kh, kw, .. } = self.g;
        for filter in 0..filters {
            for c in 0..channels {
                for i in 0..kh {
                    for j in 0..kw {
                        f(((filter * channels + c) * kh + i) * kw + j, ((filter * kh + i) * kw + j) * channels + c);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The kernel and input gradients of one item by the portable and the AVX2 code, on a random
    /// item whose maxima lie where a max-pooling would have found them.
    fn both_paths(rng: &mut ChaCha8Rng, g: ConvGeometry, pool: [usize; 2], strides: [usize; 2]) -> [(Vec<f32>, Vec<f32>); 2] {
        let p = PoolGeometry::new((1, g.filters, g.oh, g.ow), pool, strides).unwrap();
        let layout = ChannelsLast::new(&g);
        let mut random = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (x_last, kernel_last) = (random(layout.padded_len()), random(g.filters * g.taps()));
        let (pooled, grad) = (random(g.filters * p.output_plane()), random(g.filters * p.output_plane()));
        let argmax: Vec<u32> = (0..g.filters * p.output_plane())
            .map(|i| {
                let (row, col) = ((i % p.output_plane()) / p.ow, i % p.ow);
                let (y, x) = (row * strides[0] + rng.random_range(0..pool[0]), col * strides[1] + rng.random_range(0..pool[1]));
                (y * g.ow + x) as u32
            })
            .collect();
        let mut nonzeros = Nonzeros::default();
        nonzeros.fill(&p, Pointwise::Relu, [&pooled, &grad], &argmax, &mut vec![0.0; g.filters]);
        let run = |path: fn(ItemBackward<'_>)| {
            let (mut grad_k, mut grad_x) = (vec![0.0; kernel_last.len()], vec![0.0; x_last.len()]);
            let (layout, pool, nonzeros, band) = (&layout, &p, &nonzeros, &mut Band::default());
            path(ItemBackward {
                layout,
                pool,
                nonzeros,
                band,
                x_last: &x_last,
                kernel_last: &kernel_last,
                grad_k: &mut grad_k,
                grad_x_last: Some(&mut grad_x),
            });
            (grad_k, grad_x)
        };
        // `run` takes the AVX2 code where the CPU has it.
        [run(run_portable), run(|work| work.run())]
    }

    /// The kernel gradient summed a kernel row at a time, all filters per row, as [`run_portable`]
    /// does for long rows: the order the short-row path must reproduce.
    fn grad_k_by_kernel_rows(layout: &ChannelsLast, p: &PoolGeometry, nonzeros: &Nonzeros, x_last: &[f32]) -> Vec<f32> {
        let (run, row_stride, taps) = (layout.run(), layout.row_stride(), layout.taps());
        let mut grad_k = vec![0.0; layout.g.filters * taps];
        for row in 0..p.oh {
            for i in 0..layout.g.kh {
                for (f, grad_k) in grad_k.chunks_exact_mut(taps).enumerate() {
                    let terms =
                        nonzeros.of(f, row).iter().map(|&(v, at)| (v, &x_last[layout.corners[at] + i * row_stride..][..run]));
                    add_products(&mut grad_k[i * run..][..run], terms);
                }
            }
        }
        grad_k
    }

    #[test]
    fn short_kernel_rows_give_the_same_bits_as_row_passes() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // 3×3 and 5×5 single-channel kernels (unrolled), then 2-channel 3×3 and 4×4 (the general loop).
        let shapes = [
            (1, 14, 12, 5, 3, [0; 4]),
            (1, 12, 12, 4, 5, [2, 2, 2, 2]),
            (2, 9, 9, 3, 3, [1; 4]),
            (1, 10, 10, 3, 4, [1, 2, 1, 2]),
        ];
        for (channels, height, width, filters, k, pad) in shapes {
            let g = ConvGeometry::new((1, channels, height, width), (filters, channels, k, k), pad).unwrap();
            let p = PoolGeometry::new((1, g.filters, g.oh, g.ow), [2, 2], [2, 2]).unwrap();
            let layout = ChannelsLast::new(&g);
            let x_last: Vec<f32> = (0..layout.padded_len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let [pooled, grad] =
                [0; 2].map(|_| (0..g.filters * p.output_plane()).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<_>>());
            let argmax: Vec<u32> = (0..g.filters * p.output_plane())
                .map(|i| {
                    let (row, col) = ((i % p.output_plane()) / p.ow, i % p.ow);
                    ((row * 2 + rng.random_range(0..2)) * g.ow + col * 2 + rng.random_range(0..2)) as u32
                })
                .collect();
            let mut nonzeros = Nonzeros::default();
            nonzeros.fill(&p, Pointwise::Relu, [&pooled, &grad], &argmax, &mut vec![0.0; g.filters]);
            let mut grad_k = vec![0.0; g.filters * g.taps()];
            run_portable(ItemBackward {
                layout: &layout,
                pool: &p,
                nonzeros: &nonzeros,
                band: &mut Band::default(),
                x_last: &x_last,
                kernel_last: &vec![0.0; g.filters * g.taps()],
                grad_k: &mut grad_k,
                grad_x_last: None,
            });
            assert!(grad_k.iter().any(|&v| v != 0.0), "a kernel gradient to compare");
            assert_eq!(grad_k, grad_k_by_kernel_rows(&layout, &p, &nonzeros, &x_last), "{channels} channels, kernel {k}×{k}");
        }
    }

    #[test]
    fn nonzero_entries_skip_zero_gradients_and_sum_into_the_bias() {
        let p = PoolGeometry::new((1, 2, 2, 4), [2, 2], [2, 2]).unwrap();
        // Two filters, one row of two windows each; ReLU outputs 0 in the second and third windows.
        let (pooled, grad, argmax) = ([0.5, 0.0, 0.0, 2.0], [1.5, 7.0, -3.0, -0.25], [1u32, 2, 4, 7]);
        let mut nonzeros = Nonzeros::default();
        let mut grad_b = vec![10.0, 20.0];
        nonzeros.fill(&p, Pointwise::Relu, [&pooled, &grad], &argmax, &mut grad_b);
        assert_eq!(nonzeros.of(0, 0), [(1.5, 1)]);
        assert_eq!(nonzeros.of(1, 0), [(-0.25, 7)]);
        assert_eq!(grad_b, [11.5, 19.75]);
    }

    #[test]
    fn vector_widths_give_the_same_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        // Kernel rows of 3·32 values (blocks of 64 and 32), of 5·8 (32 and a rest), of 3·1.
        let shapes = [(32, 12, 10, 6, 3, [0; 4]), (8, 9, 9, 5, 5, [2, 2, 1, 3]), (1, 8, 8, 4, 3, [1; 4])];
        for (channels, height, width, filters, k, pad) in shapes {
            let g = ConvGeometry::new((1, channels, height, width), (filters, channels, k, k), pad).unwrap();
            let [portable, fast] = both_paths(&mut rng, g, [2, 2], [2, 2]);
            assert!(portable.0.iter().any(|&v| v != 0.0), "a kernel gradient to compare");
            assert_eq!(portable, fast, "{channels} channels, kernel {k}×{k}");
        }
    }
}
