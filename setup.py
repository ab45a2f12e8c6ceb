"""Packaging for tb-metricsdiag: the backend, callback, CLI and the prebuilt frontend tab."""

import os

import setuptools

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    scope = {}
    with open(os.path.join(HERE, "tb_metricsdiag", "version.py")) as handle:
        exec(handle.read(), scope)
    return scope["VERSION"]


def read_readme():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as handle:
        return handle.read()


setuptools.setup(
    name="tb-metricsdiag",
    version=read_version(),
    description="A TensorBoard tab that tells whether a classifier is actually good: "
    "confusion matrices, PR trade-offs and diagnoses per epoch.",
    long_description=read_readme(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=setuptools.find_packages(include=["tb_metricsdiag", "tb_metricsdiag.*"])
    + ["tb_metricsdiag.frontend"],
    # The tab's source is shipped as it is: plain ES modules, no build step, no Node.js.
    package_dir={"tb_metricsdiag.frontend": "frontend"},
    package_data={
        "tb_metricsdiag.frontend": [
            "*.js",
            "panels/*.js",
            "charts/*.js",
            "*.css",
            "*.html",
            "*.svg",
        ]
    },
    # TensorFlow is deliberately not required: the backend and CLI need TensorBoard alone, and
    # users keep whichever TensorFlow build they have (tensorflow, tensorflow-cpu, tf-nightly).
    install_requires=["tensorboard>=2.16", "numpy>=1.23", "protobuf>=3.20", "werkzeug>=1.0"],
    extras_require={
        "tensorflow": ["tensorflow>=2.16"],
        "torch": ["torch>=2.1"],
        "lightning": ["lightning>=2.1", "torch>=2.1"],
        # 4.41: eval_strategy, batch_eval_metrics; Transformers' "torch" extra brings Accelerate.
        "transformers": ["transformers[torch]>=4.41", "torch>=2.1"],
        "jax": ["jax[cpu]>=0.4.30"],
        # `tb-metricsdiag report s3://...` reads through TensorBoard's boto3 file system.
        "s3": ["boto3>=1.28"],
        # Every framework the tests train on (TensorFlow and torch run in separate test processes).
        "test": [
            "tensorflow>=2.16",
            "torch>=2.1",
            "lightning>=2.1",
            "transformers[torch]>=4.41",
            "jax[cpu]>=0.4.30",
            "torchmetrics>=1.3",
            "statsmodels>=0.14",
            "moto[server]>=5",
            "boto3>=1.28",
            "scikit-learn>=1.3",
            "markdown-it-py>=3",
            "pytest>=7",
            "hypothesis>=6",
            # The reference for confident learning's flagged set (tests/test_label_issues.py).
            # AGPL-3.0: the tests import it, the package never does.
            "cleanlab>=2.6,<3",
            # The reference decoder of the stored PNG thumbnails (tests/test_example_records.py).
            "pillow>=9",
            "playwright>=1.40",
            "ruff>=0.6",
        ],
        "demo": ["tensorflow>=2.16", "scikit-learn>=1.3"],
    },
    entry_points={
        "tensorboard_plugins": ["metricsdiag = tb_metricsdiag.backend.plugin:MetricsDiagLoader"],
        "console_scripts": ["tb-metricsdiag = tb_metricsdiag.cli:console_main"],
    },
    classifiers=[
        "Framework :: TensorFlow",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
