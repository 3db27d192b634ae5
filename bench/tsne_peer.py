"""scikit-learn peer of nnlab's t-SNE timing: Barnes-Hut TSNE (perplexity 30, 2-D) of the first N MNIST test
images (784 pixels scaled to [0, 1]), timed, with its neighbourhood hit at k = 10 for comparison with
`cargo run --example projection_bench -p nnlab-analysis`. Usage: python tsne_peer.py IMAGES.gz LABELS.gz [N ...]
Install: .venv-peer/bin/pip install scikit-learn"""
import gzip, json, sys, time
import numpy as np
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors

def idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)

def neighbourhood_hit(points, labels, k=10):
    _, nn = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return float((labels[nn[:, 1:]] == labels[:, None]).mean())

if __name__ == "__main__":
    images = idx(sys.argv[1], 16).reshape(-1, 784).astype(np.float32) / 255.0
    labels = idx(sys.argv[2], 8)
    for n in [int(a) for a in sys.argv[3:]] or [1000, 10000]:
        t0 = time.perf_counter()
        embedding = TSNE(n_components=2, perplexity=30.0, random_state=0, n_jobs=-1).fit_transform(images[:n])
        seconds = time.perf_counter() - t0
        print(json.dumps({"points": n, "seconds": round(seconds, 2), "nh10": round(neighbourhood_hit(embedding, labels[:n]), 3)}), flush=True)
