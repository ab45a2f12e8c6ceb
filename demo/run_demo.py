"""tb-metricsdiag demo: small, realistic Keras classifiers that show what the tab finds.

Every scenario trains on data that ships inside scikit-learn (or on synthetic NumPy data),
downloads nothing, and writes one run directory under the logdir (default ``demo-runs``) with
both ``MetricsDiagCallback`` and ``keras.callbacks.TensorBoard``. The scenarios, and the
diagnosis each one should trigger in the metricsdiag tab:

``healthy_breast_cancer``
    Breast cancer (malignant / benign), a small MLP that learns well: both losses fall and
    both classes get a good recall. Expected: no warning or error.
``fraud_accuracy_paradox``
    Synthetic card transactions with about 2% fraud whose features barely differ from the
    legitimate ones. The model reaches ~98% accuracy by calling almost everything legitimate,
    so the fraud recall is near zero. Expected: ``accuracy_paradox``.
``overfitting_digits``
    Handwritten digits with a small training set (200 images, some of them mislabelled) and
    a large network trained for many epochs: the training loss keeps falling towards zero
    while the validation loss turns up after its best epoch. Expected: ``overfitting``.
``leaky_wine``
    Wine cultivars where most validation rows were copied from the training data (a classic
    split bug). The callback gets the training data as ``train_data`` and finds the byte for
    byte duplicates; validation looks suspiciously good. Expected: ``train_val_overlap``.
``wrong_loss``
    A digits classifier whose last layer is linear (it outputs logits) but which is compiled
    with ``SparseCategoricalCrossentropy(from_logits=False)``: the loss treats the logits as
    probabilities. Expected: ``loss_mismatch``.
``not_learning``
    Wine with shuffled labels: there is nothing to learn, the validation loss stays at the
    uninformed ln(3) and the accuracy at chance level (the model ends up predicting the
    majority class). Expected: ``not_learning``.

Usage::

    python demo/run_demo.py [--logdir DIR] [--no-serve] [--quick] [--port N]

It prints one line per scenario while it trains, then starts TensorBoard on the logdir (or,
with ``--no-serve``, prints the command that would start it and exits). ``--quick`` trains
fewer epochs (for CI); every run is still written. Seeds are fixed, so runs are reproducible.
"""

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

try:
    import tb_metricsdiag  # noqa: F401  (installed, or on PYTHONPATH)
except ImportError:  # run from a source checkout without installing: use the checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SEED = 1234
DEFAULT_LOGDIR = "demo-runs"
DEFAULT_PORT = 6006


def import_keras_quietly():
    """Import Keras (and TensorFlow) and run a first op with native stderr captured.

    TensorFlow's C++ start-up messages (oneDNN, CUDA probing) ignore TF_CPP_MIN_LOG_LEVEL in
    recent releases; they are swallowed here, and shown only if the import fails.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras

            keras.ops.convert_to_tensor(np.zeros(1))  # device set-up logs here
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return keras


# -- data ---------------------------------------------------------------------------------


def standardize(x_train, *others):
    """Scale every feature to zero mean and unit variance using training statistics only."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return [((x - mean) / std).astype(np.float32) for x in (x_train,) + others]


def split(x, y, val_fraction, rng, train_size=None):
    """Shuffled train / validation split; ``train_size`` caps the training examples."""
    order = rng.permutation(len(y))
    n_val = int(round(len(y) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    if train_size is not None:
        train = train[:train_size]
    x_train, x_val = standardize(x[train], x[val])
    return x_train, y[train], x_val, y[val]


# -- the shared training helper -----------------------------------------------------------


def dense_classifier(
    n_features,
    hidden,
    n_outputs,
    output_activation,
    learning_rate,
    loss,
    output_initializer="glorot_uniform",
):
    """A compiled multilayer perceptron: ``hidden`` ReLU layers, then the output layer."""
    import keras

    layers = [keras.Input((n_features,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(
        keras.layers.Dense(
            n_outputs, activation=output_activation, kernel_initializer=output_initializer
        )
    )
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    return model


def train(logdir, name, model, data, epochs, class_names, batch_size=32, train_data=None):
    """Fit ``model`` on ``data`` = (x, y, x_val, y_val) into ``logdir/name``, with both callbacks.

    Removes the run directory first, so a re-run replaces the previous run instead of adding
    event files to it. Returns the final Keras logs.
    """
    import keras

    from tb_metricsdiag import MetricsDiagCallback

    x, y, x_val, y_val = data
    run_dir = os.path.join(logdir, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    callbacks = [
        MetricsDiagCallback(
            run_dir,
            validation_data=(x_val, y_val),
            train_data=train_data if train_data is not None else (x, y),
            class_names=class_names,
        ),
        keras.callbacks.TensorBoard(run_dir),
    ]
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    return {key: values[-1] for key, values in history.history.items()}


# -- the scenarios ------------------------------------------------------------------------
# Each takes (logdir, epoch_scale) and returns the final Keras logs of its run.


def healthy_breast_cancer(logdir, scale):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = np.random.default_rng(SEED)
    x, y, x_val, y_val = split(data.data, data.target.astype(np.float32), 0.3, rng)
    model = dense_classifier(x.shape[1], [16], 1, "sigmoid", 1e-3, "binary_crossentropy")
    return train(
        logdir,
        "healthy_breast_cancer",
        model,
        (x, y, x_val, y_val),
        epochs=scaled(30, scale),
        class_names=list(data.target_names),
    )


def fraud_accuracy_paradox(logdir, scale):
    rng = np.random.default_rng(SEED)
    n, n_features, fraud_rate = 8000, 12, 0.02
    y = (rng.random(n) < fraud_rate).astype(np.float32)
    x = rng.normal(size=(n, n_features))
    x[:, :2] += 0.35 * y[:, None]  # fraud differs only slightly from legitimate payments
    x_train, y_train, x_val, y_val = split(x, y, 0.25, rng)
    model = dense_classifier(n_features, [16], 1, "sigmoid", 1e-3, "binary_crossentropy")
    return train(
        logdir,
        "fraud_accuracy_paradox",
        model,
        (x_train, y_train, x_val, y_val),
        epochs=scaled(12, scale),
        batch_size=64,
        class_names=["legit", "fraud"],
    )


def overfitting_digits(logdir, scale):
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(SEED)
    x, y, x_val, y_val = split(data.data, data.target, 0.4, rng, train_size=200)
    # A small training set in which some digits were mislabelled: the big network memorises
    # the mistakes, which shows in the validation loss.
    mislabelled = rng.random(len(y)) < 0.15
    y = np.where(mislabelled, rng.integers(0, 10, size=len(y)), y)
    model = dense_classifier(
        x.shape[1], [512, 512], 10, "softmax", 2e-3, "sparse_categorical_crossentropy"
    )
    return train(
        logdir,
        "overfitting_digits",
        model,
        (x, y, x_val, y_val),
        epochs=scaled(50, scale),
        class_names=[str(d) for d in range(10)],
    )


def leaky_wine(logdir, scale):
    from sklearn.datasets import load_wine

    data = load_wine()
    rng = np.random.default_rng(SEED)
    x, y, x_val, y_val = split(data.data, data.target, 0.3, rng)
    # The bug: most of the "validation" set is copied from the training set.
    copied = rng.choice(len(y), size=int(0.7 * len(y_val)), replace=False)
    x_val = np.concatenate([x[copied], x_val[len(copied) :]])
    y_val = np.concatenate([y[copied], y_val[len(copied) :]])
    model = dense_classifier(
        x.shape[1], [16], 3, "softmax", 3e-3, "sparse_categorical_crossentropy"
    )
    return train(
        logdir,
        "leaky_wine",
        model,
        (x, y, x_val, y_val),
        epochs=scaled(20, scale),
        batch_size=16,
        class_names=list(data.target_names),
    )


def wrong_loss(logdir, scale):
    import keras
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(SEED)
    x, y, x_val, y_val = split(data.data, data.target, 0.3, rng)
    # The bug: a linear output layer (logits) with a loss that expects probabilities.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=False)
    model = dense_classifier(x.shape[1], [64], 10, None, 1e-3, loss)
    return train(
        logdir,
        "wrong_loss",
        model,
        (x, y, x_val, y_val),
        epochs=scaled(15, scale),
        class_names=[str(d) for d in range(10)],
    )


def not_learning(logdir, scale):
    from sklearn.datasets import load_wine

    data = load_wine()
    rng = np.random.default_rng(SEED)
    labels = rng.permutation(data.target)  # the bug: labels no longer belong to their rows
    x, y, x_val, y_val = split(data.data, labels, 0.3, rng)
    # A zero-initialised output layer starts at the uninformed loss, ln(3): any fall below it
    # would be learning, and there is nothing to learn.
    model = dense_classifier(
        x.shape[1],
        [8],
        3,
        "softmax",
        1e-3,
        "sparse_categorical_crossentropy",
        output_initializer="zeros",
    )
    return train(
        logdir,
        "not_learning",
        model,
        (x, y, x_val, y_val),
        epochs=scaled(15, scale),
        class_names=list(data.target_names),
    )


SCENARIOS = [
    healthy_breast_cancer,
    fraud_accuracy_paradox,
    overfitting_digits,
    leaky_wine,
    wrong_loss,
    not_learning,
]


def scaled(epochs, scale):
    return max(5, int(round(epochs * scale)))


# -- command line -------------------------------------------------------------------------


def tensorboard_command(logdir, port):
    return [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", str(port)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--logdir", default=DEFAULT_LOGDIR, help="where the runs are written (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TensorBoard port (default: %(default)s)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer epochs, for CI; still writes every run"
    )
    parser.add_argument(
        "--no-serve",
        action="store_true",
        help="do not start TensorBoard; print the command instead",
    )
    args = parser.parse_args(argv)

    keras = import_keras_quietly()

    scale = 0.5 if args.quick else 1.0
    os.makedirs(args.logdir, exist_ok=True)
    print(
        "Training %d demo scenarios into %s%s"
        % (len(SCENARIOS), args.logdir, " (quick)" if args.quick else ""),
        flush=True,
    )
    start = time.perf_counter()
    for number, scenario in enumerate(SCENARIOS, 1):
        keras.utils.set_random_seed(SEED)
        began = time.perf_counter()
        print("[%d/%d] %-24s" % (number, len(SCENARIOS), scenario.__name__), end="", flush=True)
        logs = scenario(args.logdir, scale)
        print(
            " %5.1fs  loss %.3f  val_loss %.3f  val_accuracy %.3f"
            % (
                time.perf_counter() - began,
                logs.get("loss", float("nan")),
                logs.get("val_loss", float("nan")),
                logs.get("val_accuracy", float("nan")),
            ),
            flush=True,
        )
    print("All scenarios trained in %.1fs." % (time.perf_counter() - start), flush=True)

    command = tensorboard_command(args.logdir, args.port)
    url = "http://localhost:%d/#metricsdiag" % args.port
    if args.no_serve:
        print("To look at the runs, start TensorBoard and open %s :" % url)
        print("  " + shlex.join(command))
        print(
            "(or, with this Python's environment active: %s)"
            % shlex.join(["tensorboard", "--logdir", args.logdir, "--port", str(args.port)])
        )
        return 0
    print("Starting TensorBoard: open %s (Ctrl+C to stop)" % url, flush=True)
    return serve(command)


# Seconds TensorBoard gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10

# TensorFlow's probe for a CUDA GPU, in TensorBoard's stderr: TensorBoard imports TensorFlow
# where it is installed, and on a machine without a GPU TensorFlow then logs these lines
# whatever TF_CPP_MIN_LOG_LEVEL says short of hiding its real errors too ("failed call to
# cuInit" at ERROR level). TensorBoard needs no GPU, so they tell the user nothing; every
# other line of TensorBoard's passes.
CUDA_PROBE_MARKS = (
    b"cudart_stub.cc",
    b"cuda_platform.cc",
    b"failed call to cuInit",
    b"All log messages before absl::InitializeLog() is called are written to STDERR",
)


def relay_stderr(stream, out):
    """Copy the lines of ``stream`` (a child's stderr, bytes) to ``out`` (a binary stream), but
    TensorFlow's CUDA probe lines (`CUDA_PROBE_MARKS`), until the child closes it.
    """
    for line in iter(stream.readline, b""):
        if not any(mark in line for mark in CUDA_PROBE_MARKS):
            out.write(line)
            out.flush()
    stream.close()


def serve(command):
    """Run ``command`` (TensorBoard) until it exits, or until this process gets Ctrl+C or
    SIGTERM (a service manager, ``docker stop``, a CI job ending): then stop it too, so that
    no TensorBoard is left holding the port. Returns 0 when stopped so, else its status. Its
    stderr reaches ours without TensorFlow's CUDA probe lines (`relay_stderr`).
    """
    sys.stderr.flush()
    child = subprocess.Popen(command, stderr=subprocess.PIPE)
    relay = threading.Thread(
        target=relay_stderr, args=(child.stderr, sys.stderr.buffer), daemon=True
    )
    relay.start()

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        try:
            child.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        relay.join(STOP_TIMEOUT_S)  # TensorBoard's last lines, e.g. why it could not start


if __name__ == "__main__":
    sys.exit(main())
