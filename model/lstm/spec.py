"""The LSTM's hyperparameters and the names of its files."""

from __future__ import annotations

from model.hyperparameters import Param, Spec

SPEC = Spec(
    Param("epochs", int, 3, "most passes over the training data (early stopping may stop sooner)", 1, 1000),
    Param("batch_size", int, 256, "texts per minibatch", 1, 100_000),
    Param("learning_rate", float, 0.002, "Adam's step size (alpha)", 1e-6, 1),
    Param("embed_dim", int, 128, "size of word vectors", 2, 2048),
    Param("hidden_dim", int, 64, "LSTM units per direction", 2, 2048),
    Param("layers", int, 1, "stacked LSTM layers", 1, 8),
    Param("bidirectional", bool, True, "also read each text right to left"),
    Param("dropout", float, 0.3, "dropout on word vectors and on the sentence vector", 0, 0.95),
    Param("max_vocab", int, 50_000, "most frequent words kept; the rest are unknown", 10, 10_000_000),
    Param("min_count", int, 2, "words seen fewer times are unknown", 1, 1_000_000),
    Param("max_len", int, 64, "tokens kept per text (longer texts are truncated)", 1, 10_000),
    Param("average_epochs", int, 2, "the model is the mean of the weights at the end of the last this many "
                                    "epochs (1: the last epoch's own)", 1, 1000),
    Param("early_stopping", bool, True, "stop when validation accuracy stops improving and keep the "
                                        "best epoch's model (needs a validation channel; else ignored)"),
    Param("patience", int, 2, "early stopping: epochs without improvement before stopping", 1, 1000),
    Param("grad_clip", float, 5.0, "clip the gradient's global L2 norm to this (0: no clipping)", 0, 1e6),
    Param("weight_decay", float, 0.0, "L2 weight decay (0: none)", 0, 1),
    Param("bucket_batches", int, 20, "minibatches per length-sorted chunk (1: no length bucketing)", 1, 100_000),
    Param("pretrain_epochs", int, 0, "first learn word vectors from the training texts with fastText skipgram "
                                     "for this many epochs to initialise the embeddings (0: random init)", 0, 100),
    Param("seed", int, 0, "random seed: the same seed and data give the same weights", 0, 2**31 - 1),
)

WEIGHTS_FILE = "lstm.npz"  # Chainer's save_npz layout: "encoder/embed/W", "output/b", ...
VOCAB_FILE = "vocab.json"
CHECKPOINT_FILE = "lstm-checkpoint.npz"
