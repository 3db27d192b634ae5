//! What the integration tests share.

use std::path::{Path, PathBuf};

/// The dataset mirror: `$NNLAB_DATA_MIRROR`, else `../shared/datasets` beside the checkout.
pub fn mirror() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("NNLAB_DATA_MIRROR")
        .map(PathBuf::from)
        .map(|d| if d.is_relative() { root.join(d) } else { d })
        .unwrap_or_else(|| root.join("../shared/datasets"));
    assert!(
        dir.join("mnist/train-images-idx3-ubyte.gz").is_file(),
        "the integration tests need real MNIST: set NNLAB_DATA_MIRROR (looked in {})",
        dir.display()
    );
    dir
}
