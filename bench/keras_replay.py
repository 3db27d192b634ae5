"""Keras trajectory replays: small versions of every layer kind and optimiser the catalogue uses,
trained step by step under Keras, exported as fixtures that nnlab's tests replay
(tests/keras_replay.rs). Optional, like bench/keras_peer.py: the pipeline never runs Python.

Each fixture holds the model (in the catalogue's vocabulary), the training settings, the samples,
the initial weights, the batch order, Keras' loss at every step and the weights after the first and
the last step. Weights are stored in nnlab's layout: a conv kernel as (filters, channels, kh, kw),
and the rows of a dense kernel that follows a flatten of a feature map in channels-first order
(nnlab's convolutions run channels-first inside the model; Keras flattens height, width, channels).

Usage: python bench/keras_replay.py OUT_DIR [case ...]
Install: python3 -m venv .venv-peer && .venv-peer/bin/pip install tensorflow-cpu
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

EPSILON = 1e-7


def clipped_crossentropy(y_true, y_pred):
    """Keras 2's categorical cross-entropy: probabilities clipped to [ε, 1 - ε], then the log."""
    p = keras.ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    return -keras.ops.sum(y_true * keras.ops.log(p), axis=-1)


def dense(units, activation, l2=None):
    spec = {"type": "dense", "units": units, "activation": activation}
    if l2:
        spec["l2"] = l2
    reg = keras.regularizers.L2(l2) if l2 else None
    return spec, keras.layers.Dense(units, activation=activation, kernel_regularizer=reg)


def conv(filters, k, activation, padding="valid", l2=None):
    spec = {"type": "conv2d", "filters": filters, "kernel": [k, k], "activation": activation, "padding": padding}
    if l2:
        spec["l2"] = l2
    reg = keras.regularizers.L2(l2) if l2 else None
    return spec, keras.layers.Conv2D(filters, k, activation=activation, padding=padding, kernel_regularizer=reg)


def pool(p):
    return {"type": "max_pool2d", "pool": [p, p]}, keras.layers.MaxPooling2D(p)


def flatten():
    return {"type": "flatten"}, keras.layers.Flatten()


def sgd(lr):
    return {"name": "sgd", "lr": lr}, keras.optimizers.SGD(lr)


def rmsprop(lr=0.001, decay=0.0):
    spec = {"name": "rmsprop", "lr": lr, "decay": decay}
    # Keras 2's `decay` (lr / (1 + decay · iterations)) is Keras 3's InverseTimeDecay with one step per unit.
    rate = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=decay) if decay else lr
    return spec, keras.optimizers.RMSprop(rate)


def adadelta(lr=1.0):
    return {"name": "adadelta", "lr": lr}, keras.optimizers.Adadelta(lr)


DENSE_IN = [24]
IMAGE_IN = [7, 7, 2]

# name: (input shape, layers, optimiser, loss convention, epochs, batch size[, loss]); the loss is
# categorical cross-entropy against the labels unless a case names binary cross-entropy, which
# reconstructs the (scaled) input itself, as the autoencoder does.
CASES = {
    "dense_linear_rmsprop": (DENSE_IN, lambda: [dense(8, "linear"), dense(4, "softmax")], rmsprop, "keras3", 4, 16),
    "dense_linear_rmsprop_clipped": (DENSE_IN, lambda: [dense(8, "linear"), dense(4, "softmax")], rmsprop, "keras2", 4, 16),
    "dense_relu_rmsprop": (DENSE_IN, lambda: [dense(8, "relu"), dense(4, "softmax")], rmsprop, "keras3", 4, 16),
    "dense_rmsprop_decay": (DENSE_IN, lambda: [dense(8, "relu"), dense(4, "softmax")], lambda: rmsprop(1e-2, 0.05), "keras3", 4, 16),
    "dense_sigmoid_sgd": (DENSE_IN, lambda: [dense(8, "sigmoid"), dense(4, "softmax")], lambda: sgd(0.5), "keras3", 4, 16),
    "dense_l2_sgd": (DENSE_IN, lambda: [dense(8, "relu", l2=1e-2), dense(4, "softmax", l2=1e-3)], lambda: sgd(0.1), "keras3", 4, 16),
    "dense_adadelta": (DENSE_IN, lambda: [dense(8, "relu"), dense(4, "softmax")], adadelta, "keras3", 4, 16),
    "conv_pool_sgd": (IMAGE_IN, lambda: [conv(3, 3, "relu", "same"), conv(4, 3, "relu"), pool(2), flatten(), dense(4, "softmax")], lambda: sgd(0.1), "keras3", 3, 16),
    "conv_pool_adadelta": (IMAGE_IN, lambda: [conv(3, 3, "relu", "same"), conv(4, 3, "relu"), pool(2), flatten(), dense(6, "relu"), dense(4, "softmax")], adadelta, "keras3", 3, 16),
    "conv_pool_rmsprop_l2": (IMAGE_IN, lambda: [conv(3, 3, "relu", "same", l2=1e-3), pool(3), flatten(), dense(4, "softmax")], lambda: rmsprop(1e-3, 1e-2), "keras3", 3, 16),
    "autoencoder_bce_rmsprop": (DENSE_IN, lambda: [dense(8, "relu"), dense(24, "sigmoid")], rmsprop, "keras3", 4, 16, "binary_crossentropy"),
    "conv_sigmoid_same_sgd": (IMAGE_IN, lambda: [conv(3, 4, "sigmoid", "same"), pool(2), conv(4, 3, "sigmoid", "same"), pool(2), flatten(), dense(4, "softmax")], lambda: sgd(0.5), "keras3", 3, 16),
}

SAMPLES = 60  # four batches of 16, the last one partial (12)
CLASSES = 4


def samples(shape, seed):
    """8-bit pixels with a quarter of the features always 0 (like MNIST's border pixels), and labels."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (SAMPLES, *shape), dtype=np.uint8)
    dead = rng.random(shape) < 0.25
    pixels[:, dead] = 0
    labels = rng.integers(0, CLASSES, SAMPLES)
    return pixels, labels


def f32(values):
    """float32 values as the shortest decimals that read back as the same float32."""
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32).ravel()]


def nnlab_layout(model, input_shape):
    """The model's weights as nnlab's variables: per dense/conv layer its kernel, then its bias."""
    out = []
    channels_first_flatten = None  # (h, w, c) of the map a flatten received
    for layer in model.layers:
        if isinstance(layer, keras.layers.Flatten):
            channels_first_flatten = layer.input.shape[1:]
        weights = layer.get_weights()
        if not weights:
            continue
        kernel, bias = weights
        if kernel.ndim == 4:
            kernel = kernel.transpose(3, 2, 0, 1)  # (kh, kw, c, f) -> (f, c, kh, kw)
        elif channels_first_flatten is not None:
            h, w, c = channels_first_flatten
            kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
            channels_first_flatten = None
        out += [kernel, bias]
    return [{"shape": list(w.shape), "values": f32(w)} for w in out]


def replay(name, seed=0):
    shape, layers, optimiser, convention, epochs, batch, *rest = CASES[name]
    loss_name = rest[0] if rest else "categorical_crossentropy"
    keras.utils.set_random_seed(seed)
    pairs = layers()
    model = keras.Sequential([keras.Input(tuple(shape))] + [layer for _, layer in pairs])
    opt_spec, opt = optimiser()
    if loss_name == "binary_crossentropy":
        if convention != "keras3":
            raise SystemExit(f"{name}: binary cross-entropy replays only the Keras 3 convention")
        loss = "binary_crossentropy"
    else:
        loss = "categorical_crossentropy" if convention == "keras3" else clipped_crossentropy
    model.compile(optimizer=opt, loss=loss)
    pixels, labels = samples(shape, seed + 1)
    x = pixels.astype(np.float32) / 255.0  # as the assignments scale their images
    y = x.reshape(len(x), -1) if loss_name == "binary_crossentropy" else keras.utils.to_categorical(labels, CLASSES)
    initial = nnlab_layout(model, shape)
    order_rng = np.random.default_rng(seed + 2)
    steps, after_first = [], None
    for _ in range(epochs):
        order = order_rng.permutation(SAMPLES)
        for start in range(0, SAMPLES, batch):
            idx = order[start:start + batch]
            value = model.train_on_batch(x[idx], y[idx])
            steps.append({"indices": [int(i) for i in idx], "loss": f32(value)[0]})
            if after_first is None:
                after_first = nnlab_layout(model, shape)
    return {
        "case": name,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "model": {"input": shape, "layers": [spec for spec, _ in pairs]},
        "train": {"batch_size": batch, "optimizer": opt_spec, "loss": loss_name, "convention": convention},
        "classes": CLASSES,
        "pixels": [int(v) for v in pixels.ravel()],
        "labels": [int(v) for v in labels],
        "initial": initial,
        "steps": steps,
        "after_first_step": after_first,
        "final": nnlab_layout(model, shape),
    }


if __name__ == "__main__":
    out_dir, names = sys.argv[1], sys.argv[2:] or list(CASES)
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        fixture = replay(name)
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump(fixture, f, separators=(",", ":"))
        print(f"{name}: {len(fixture['steps'])} steps, final loss {fixture['steps'][-1]['loss']:.6f}", flush=True)
