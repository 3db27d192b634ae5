//! Times the projections and separability metrics on real MNIST test images and prints a
//! Markdown table: PCA to 2-D, t-SNE (default config: perplexity 30, θ 0.5, 1,000 iterations,
//! PCA to 50 dimensions first) of the first 1,000 and of all 10,000 images, and the metrics
//! (neighbourhood hit k = 10 with its curve to 30, hulls, ellipses) of the 10,000-point t-SNE.
//!
//! t-SNE runs on one thread by design (see `nnlab_analysis::tsne_2d`); the kNN searches use
//! every core.
//!
//! `cargo run --example projection_bench -p nnlab-analysis [-- --points N] [--data DIR]`
//!
//! The images are read from `DIR/t10k-images-idx3-ubyte.gz` (and labels beside them), `DIR`
//! defaulting to `NNLAB_DATA_MIRROR`, else `data/mnist`, else the shared datasets folder beside
//! the workspace.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nnlab_analysis::{neighbourhood_hit, pca_2d, separation_metrics, tsne_2d, Features, Point, TsneConfig};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut sizes = vec![1_000, 10_000];
    let mut data_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--points" => sizes = vec![args.next().ok_or("--points needs a number")?.parse()?],
            "--data" => data_dir = Some(PathBuf::from(args.next().ok_or("--data needs a directory")?)),
            other => return Err(format!("unknown argument {other}; expected --points N or --data DIR").into()),
        }
    }
    let dir = data_dir.unwrap_or_else(default_data_dir);
    let (images, labels) = read_mnist_test(&dir)?;
    let largest = sizes.iter().copied().max().unwrap_or(0).min(labels.len());

    println!("| step | points | time (s) | result |");
    println!("|---|---:|---:|---|");
    let mut last_tsne: Option<(usize, Vec<Point>)> = None;
    for &n in &sizes {
        let n = n.min(labels.len());
        let features = Features::new(n, 784, &images[..n * 784])?;
        let labels = &labels[..n];

        let (pca, seconds) = timed(|| pca_2d(features));
        let pca = pca?;
        let nh = neighbourhood_hit(&pca, labels, 10)?.overall;
        println!("| PCA to 2-D | {n} | {seconds:.2} | NH(10) = {nh:.3} |");

        let (tsne, seconds) = timed(|| tsne_2d(features, &TsneConfig::default()));
        let tsne = tsne?;
        let nh = neighbourhood_hit(&tsne, labels, 10)?.overall;
        println!("| t-SNE | {n} | {seconds:.1} | NH(10) = {nh:.3} |");
        if n == sizes[0].min(labels.len()) {
            print_determinism(features, &tsne)?;
        }
        last_tsne = Some((n, tsne));
    }

    if let Some((n, tsne)) = last_tsne.filter(|(n, _)| *n == largest) {
        let labels = &labels[..n];
        let (nh, seconds) = timed(|| nnlab_analysis::neighbourhood_hit_curve(&tsne, labels, 30));
        let curve = nh?;
        println!("| NH curve k = 1..30 (t-SNE) | {n} | {seconds:.3} | NH(30) = {:.3} |", curve[29]);
        let (metrics, seconds) = timed(|| separation_metrics(&tsne, labels, 10, 30));
        let metrics = metrics?;
        println!(
            "| all metrics (t-SNE) | {n} | {seconds:.3} | mean hull IoU = {:.3}, mean BC = {:.3} |",
            metrics.hulls.mean_iou, metrics.ellipses.mean_bc
        );
    }
    println!();
    println!("{} rayon threads for the kNN searches; t-SNE optimises on one.", rayon::current_num_threads());
    Ok(())
}

/// Embeds the same points again with the same seed, on a pool of another size, and says whether
/// the embedding is bit-identical to `first`.
fn print_determinism(features: Features, first: &[Point]) -> Result<(), Error> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build()?;
    let (again, seconds) = timed(|| pool.install(|| tsne_2d(features, &TsneConfig::default())));
    let bits = |points: &[Point]| points.iter().flat_map(|p| [p[0].to_bits(), p[1].to_bits()]).collect::<Vec<_>>();
    println!(
        "| t-SNE again, same seed, 3-thread pool | {} | {seconds:.1} | bit-identical: {} |",
        features.rows,
        bits(&again?) == bits(first)
    );
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed().as_secs_f64())
}

fn default_data_dir() -> PathBuf {
    let candidates = std::env::var_os("NNLAB_DATA_MIRROR")
        .filter(|m| !m.is_empty())
        .map(|m| PathBuf::from(m).join("mnist"))
        .into_iter()
        .chain([PathBuf::from("data/mnist"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/mnist")]);
    let candidates: Vec<PathBuf> = candidates.collect();
    candidates
        .iter()
        .find(|dir| dir.join("t10k-images-idx3-ubyte.gz").exists())
        .unwrap_or(&candidates[candidates.len() - 1])
        .clone()
}

/// The MNIST test images as pixels in [0, 1], row-major 784 per image, and their labels.
fn read_mnist_test(dir: &Path) -> Result<(Vec<f32>, Vec<u8>), Error> {
    let images = read_idx(&dir.join("t10k-images-idx3-ubyte.gz"), 0x0803, 16)?;
    let labels = read_idx(&dir.join("t10k-labels-idx1-ubyte.gz"), 0x0801, 8)?;
    if images.len() != labels.len() * 784 {
        return Err(format!("{}: {} pixels for {} labels", dir.display(), images.len(), labels.len()).into());
    }
    Ok((images.iter().map(|&p| f32::from(p) / 255.0).collect(), labels))
}

fn read_idx(path: &Path, magic: u32, header: usize) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file).read_to_end(&mut bytes)?;
    if bytes.len() < header || u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) != magic {
        return Err(format!("{}: not an IDX file with magic {magic:#x}", path.display()).into());
    }
    Ok(bytes.split_off(header))
}
