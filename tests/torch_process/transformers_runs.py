"""Tiny Hugging Face Transformers runs for tests/torch_process/test_transformers.py: a BERT of one
layer built from its config (nothing downloaded), synthetic token data, and the Trainer's
arguments; run as a script under ``torchrun`` it trains one DDP run and prints what it saw.

    python -m torch.distributed.run --nproc_per_node 2 transformers_runs.py OUTPUT_DIR
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded, ever

import numpy as np  # noqa: E402
import torch  # noqa: E402
from process_group import leave_process_group  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)

VOCAB = 50
LENGTH = 8
FIRST_CLASS_TOKEN = 1  # token FIRST_CLASS_TOKEN + k at position 0 hints at class (label) k
HINTED = 0.7  # share of examples whose first token gives their class away
DDP_EXAMPLES = 41  # odd: two processes' samplers pad it to 42
DDP_SEED = 11


def tiny_bert(num_labels, seed=0, **config):
    """A one-layer BERT classifier of hidden size 16, random weights from ``seed``."""
    torch.manual_seed(seed)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=LENGTH,
            num_labels=num_labels,
            **config,
        )
    )


class TokenData(torch.utils.data.Dataset):
    """``n`` token sequences whose first token hints at the class (``HINTED`` of them), with
    class ids, or with multi-hot float labels of ``classes`` labels (``multi_label``).
    """

    def __init__(self, n, seed, classes, multi_label=False):
        rng = np.random.default_rng(seed)
        self.tokens = rng.integers(FIRST_CLASS_TOKEN + classes, VOCAB, (n, LENGTH))
        if multi_label:
            self.labels = (rng.random((n, classes)) < 0.4).astype(np.float32)
            hinted = self.labels.argmax(axis=1)
        else:
            self.labels = rng.integers(0, classes, n)
            hinted = self.labels
        hint = np.where(rng.random(n) < HINTED, hinted, rng.integers(0, classes, n))
        self.tokens[:, 0] = FIRST_CLASS_TOKEN + hint

    def __len__(self):
        return len(self.tokens)

    def __getitem__(self, index):
        return {
            "input_ids": torch.tensor(self.tokens[index]),
            "labels": torch.tensor(self.labels[index]),
        }


class DescribedTokenData(TokenData):
    """`TokenData` whose rows also carry columns the model does not take (the Trainer's
    ``remove_unused_columns`` keeps them from it): ``id``, ``text`` and ``lang``
    (`described`)."""

    def __getitem__(self, index):
        return {**super().__getitem__(index), **described(index)}


def described(index):
    """The extra columns of row ``index`` of a `DescribedTokenData`."""
    return {
        "id": "doc-%05d" % (7919 * index % 10007),
        "text": "the text of document %d" % index,
        "lang": ("en", "de", "fr")[index % 3],
    }


def arguments(output_dir, **overrides):
    """The Trainer's arguments of the tests: CPU, small batches, evaluation and logs every
    epoch, TensorBoard on, no checkpoints, no progress bars."""
    values = dict(
        output_dir=str(output_dir),
        num_train_epochs=2,
        learning_rate=1e-2,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=16,
        eval_strategy="epoch",
        logging_strategy="epoch",
        save_strategy="no",
        report_to=["tensorboard"],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    values.update(overrides)
    return TrainingArguments(**values)


def ddp_trainer(output_dir, callback, keep_predictions, **changes):
    """The DDP test's run (also run in one process to compare): 1 epoch at learning rate 0, so
    the weights stay those of ``DDP_SEED`` and both runs predict alike."""
    return Trainer(
        model=tiny_bert(3, seed=DDP_SEED),
        args=arguments(
            output_dir,
            num_train_epochs=1,
            learning_rate=0.0,
            per_device_train_batch_size=8,
            per_device_eval_batch_size=8,
            **changes,
        ),
        train_dataset=TokenData(32, 1, 3),
        eval_dataset=TokenData(DDP_EXAMPLES, 2, 3),
        compute_metrics=callback.compute_metrics(keep_predictions),
        callbacks=[callback],
    )


def _main(output_dir):
    from tb_metricsdiag.transformers import MetricsDiagCallback

    seen = []

    def keep_predictions(eval_prediction):
        seen.append((eval_prediction.label_ids.tolist(), eval_prediction.predictions.tolist()))
        return {}

    def count_nothing(eval_prediction, compute_result):
        return {}

    callback = MetricsDiagCallback()
    trainer = ddp_trainer(output_dir, callback, keep_predictions, ddp_backend="gloo")
    trainer.train()
    # The same run with each gathered batch counted as it comes (reduce="counts").
    counted = MetricsDiagCallback(reduce="counts")
    counting_trainer = ddp_trainer(
        os.path.join(output_dir, "counts"),
        counted,
        count_nothing,
        ddp_backend="gloo",
        batch_eval_metrics=True,
    )
    counting_trainer.train()
    leave_process_group()
    if trainer.args.process_index == 0:
        ((labels, predictions),) = seen
        frameworks = sorted({"tensorflow", "keras"} & {m.split(".")[0] for m in sys.modules})
        print(
            json.dumps(
                {
                    "world_size": trainer.args.world_size,
                    "step": trainer.state.global_step,
                    "log_dir": callback.run_dir,
                    "counts_log_dir": counted.run_dir,
                    "counts_step": counting_trainer.state.global_step,
                    "pid": os.getpid(),
                    "labels": labels,
                    "predictions": predictions,
                    "frameworks": frameworks,
                }
            )
        )


if __name__ == "__main__":
    _main(sys.argv[1])
