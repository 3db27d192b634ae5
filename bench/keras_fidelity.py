"""Keras/TensorFlow peer for fidelity: trains catalogue experiments under Keras with the catalogue's
own settings (model, optimiser, batch size, epochs, validation, loss convention) on the real MNIST
and CIFAR-10 files, for several seeds, and prints one JSON line per trained model (test accuracy and
loss, the training and validation curves, training samples/s). `nnlab compare RUN THIS.jsonl` puts
these beside an nnlab run of the same experiments, with Welch's test and a verdict per experiment.
Optional, like bench/keras_peer.py: the pipeline never runs Python.

Shuffling: a seeded Keras 3 on TensorFlow (`keras.utils.set_random_seed`) draws the SAME
permutation of the training set in every epoch: tf.data re-runs its seeded shuffle op from the same
state each time the dataset is iterated. Unseeded Keras, as the assignments ran it, reshuffles every
epoch, and so does nnlab. By default this script therefore seeds the initial weights through Keras
but draws a fresh permutation per epoch itself (numpy, seeded) and fits one epoch at a time without
Keras' shuffle; `--keras-shuffle` keeps Keras' own seeded shuffle, to see the difference.

Usage: nnlab catalogue > catalogue.json
       python bench/keras_fidelity.py --catalogue catalogue.json --mnist DIR [--cifar10 TARBALL] --profile full --seeds 3 EXPERIMENT [...]
Install: python3 -m venv .venv-peer && .venv-peer/bin/pip install tensorflow-cpu
"""
import argparse
import gzip
import json
import os
import tarfile
import time
import tomllib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import keras  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPSILON = 1e-7


def clipped_crossentropy(y_true, y_pred):
    """Keras 2's categorical cross-entropy: probabilities clipped to [ε, 1 - ε], then the log."""
    p = keras.ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    return -keras.ops.sum(y_true * keras.ops.log(p), axis=-1)


def catalogue(path):
    """The resolved catalogue `nnlab catalogue` prints (extends, inserts and sweeps applied);
    experiments without a sweep, by id."""
    with open(path) as f:
        return {e["id"]: e for e in json.load(f) if not e["point"]}


def profile(name):
    with open(os.path.join(ROOT, f"pipeline/profiles/{name}.toml"), "rb") as f:
        return tomllib.load(f)


def idx(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def mnist(directory):
    images = lambda name: idx(os.path.join(directory, name), 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255.0  # noqa: E731
    labels = lambda name: idx(os.path.join(directory, name), 8)  # noqa: E731
    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


def cifar10(tarball):
    """CIFAR-10's binary version (cifar-10-binary.tar.gz): records of a label byte and 3,072 pixel
    bytes, channel by channel; returned as nnlab and Keras read it, (32, 32, 3) scaled to [0, 1]."""
    members = {}
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = os.path.basename(member.name)
            if name.endswith(".bin") and ("data_batch" in name or "test_batch" in name):
                members[name] = np.frombuffer(tar.extractfile(member).read(), np.uint8).reshape(-1, 3073)

    def split(names):
        records = np.concatenate([members[n] for n in names])
        images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
        return images, records[:, 0].copy()

    x_train, y_train = split([f"data_batch_{i}.bin" for i in range(1, 6)])
    x_test, y_test = split(["test_batch.bin"])
    return x_train, y_train, x_test, y_test


def layer(spec):
    kind = spec["type"]
    reg = keras.regularizers.L2(spec["l2"]) if spec.get("l2") else None
    if kind == "dense":
        return keras.layers.Dense(spec["units"], activation=spec.get("activation", "linear"), kernel_regularizer=reg)
    if kind == "conv2d":
        return keras.layers.Conv2D(spec["filters"], tuple(spec["kernel"]), padding=spec.get("padding", "valid"),
                                   activation=spec.get("activation", "linear"), kernel_regularizer=reg)
    if kind == "max_pool2d":
        return keras.layers.MaxPooling2D(tuple(spec["pool"]), strides=tuple(spec.get("strides", spec["pool"])))
    if kind == "flatten":
        return keras.layers.Flatten()
    if kind == "dropout":
        return keras.layers.Dropout(spec["rate"])
    if kind == "gaussian_noise":
        return keras.layers.GaussianNoise(spec["stddev"])
    raise SystemExit(f"keras_fidelity: layer type {kind!r} has no Keras counterpart here")


def optimizer(spec):
    defaults = {"sgd": 0.01, "rmsprop": 0.001, "adadelta": 1.0}
    name, lr, decay = spec["name"], spec.get("lr", defaults[spec["name"]]), spec.get("decay", 0.0)
    # Keras 2's `decay` is Keras 3's InverseTimeDecay with one step per unit.
    rate = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=decay) if decay else lr
    if name == "sgd":
        return keras.optimizers.SGD(rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rate, rho=spec.get("rho", 0.9), epsilon=spec.get("epsilon", 1e-7))
    if name == "adadelta":
        return keras.optimizers.Adadelta(rate, rho=spec.get("rho", 0.95), epsilon=spec.get("epsilon", 1e-7))
    raise SystemExit(f"keras_fidelity: optimiser {name!r} has no Keras counterpart here")


class TrainTimer(keras.callbacks.Callback):
    """Seconds spent in training steps: from each epoch's start to its validation pass (or its end),
    which is what nnlab's train_samples_per_s counts."""

    def __init__(self):
        super().__init__()
        self.seconds, self.started = 0.0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def _stop(self):
        if self.started is not None:
            self.seconds += time.perf_counter() - self.started
            self.started = None

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()


def train(experiment, prof, datasets, seed, keras_shuffle):
    name = experiment.get("dataset", "mnist")
    if datasets.get(name) is None:
        raise SystemExit(f"keras_fidelity: {experiment['id']}: needs {name} (--{name} is missing)")
    x_train, y_train, x_test, y_test = datasets[name]
    shape = tuple(experiment["model"]["input"])
    x_train, x_test = x_train.reshape(-1, *shape), x_test.reshape(-1, *shape)
    if prof.get("train_samples"):
        x_train, y_train = x_train[:prof["train_samples"]], y_train[:prof["train_samples"]]
    cfg = experiment["train"]
    epochs = min(cfg["epochs"], prof.get("max_epochs", cfg["epochs"]))
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape)] + [layer(s) for s in experiment["model"]["layers"]])
    loss = clipped_crossentropy if cfg.get("convention", "keras3") == "keras2" else "categorical_crossentropy"
    model.compile(optimizer=optimizer(cfg["optimizer"]), loss=loss, metrics=["accuracy"])
    y_cat, y_test_cat = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_test, 10)
    validation = experiment.get("validation")
    if isinstance(validation, dict):
        # Keras' validation_split: the last fraction, before any shuffling, floored like Keras.
        at = int(len(x_train) * (1.0 - validation["split"]))
        x_train, y_cat, val = x_train[:at], y_cat[:at], (x_train[at:], y_cat[at:])
    else:
        val = (x_test, y_test_cat)
    started, timer = time.perf_counter(), TrainTimer()
    if keras_shuffle:
        history = model.fit(x_train, y_cat, batch_size=cfg["batch_size"], epochs=epochs, verbose=0,
                            validation_data=val, callbacks=[timer]).history
    else:
        order_rng = np.random.default_rng(seed)
        history = {key: [] for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        for _ in range(epochs):
            perm = order_rng.permutation(len(x_train))
            h = model.fit(x_train[perm], y_cat[perm], batch_size=cfg["batch_size"], epochs=1, shuffle=False,
                          verbose=0, validation_data=val, callbacks=[timer]).history
            for key in history:
                history[key] += h[key]
    test_loss, test_acc = model.evaluate(x_test, y_test_cat, verbose=0)
    return {"experiment": experiment["id"], "seed": seed, "test_acc": test_acc, "test_loss": test_loss,
            "loss": history["loss"], "acc": history["accuracy"],
            "val_acc": history["val_accuracy"], "val_loss": history["val_loss"],
            "seconds": round(time.perf_counter() - started, 1),
            "samples_per_s": len(x_train) * epochs / timer.seconds,
            "shuffle": "keras, seeded (one order for every epoch)" if keras_shuffle else "fresh permutation every epoch"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", required=True, help="the output of `nnlab catalogue`")
    parser.add_argument("--mnist", required=True, help="directory with the four MNIST .gz files")
    parser.add_argument("--cifar10", help="cifar-10-binary.tar.gz, for the CIFAR-10 experiments")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--keras-shuffle", action="store_true",
                        help="keep Keras' own seeded shuffle, which repeats one order in every epoch")
    parser.add_argument("experiments", nargs="+")
    args = parser.parse_args()
    experiments, prof = catalogue(args.catalogue), profile(args.profile)
    datasets = {"mnist": mnist(args.mnist), "cifar10": cifar10(args.cifar10) if args.cifar10 else None}
    for name in args.experiments:
        if name not in experiments:
            raise SystemExit(f"keras_fidelity: no experiment {name!r} in pipeline/catalogue")
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            record = train(experiments[name], prof, datasets, seed, args.keras_shuffle)
            record["profile"] = args.profile
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
