"""Check a fastText `model.bin` before fastText's own loader sees it.

fastText's loader trusts the file: one truncated to 1,000 bytes made it spin at
100 % CPU while allocating without end, one cut in half loaded and answered 0.5
for every text, and a header field set to 2^31-1 loaded and then hung
predictions. So the file is walked here first, section by section as
`FastText::saveModel` writes it (header, args, dictionary, input matrix, output
matrix), with each size checked against what the header says and against the
file's length; a broken file is refused with the reason.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

MAGIC, VERSION = 793712314, 12
_ARGS = struct.Struct("<12id")  # dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate, t
_DICTIONARY = struct.Struct("<3i2q")  # size nwords nlabels ntokens pruneidx_size
_ENTRY = struct.Struct("<qb")  # count, type
_DENSE = struct.Struct("<2q")  # m n
_QUANT = struct.Struct("<?2qi")  # qnorm m n codesize
_PQ = struct.Struct("<4i")  # dim nsubq dsub lastdsub
KSUB = 256  # centroids per product-quantizer subspace
SUPERVISED, LOSSES = 3, range(1, 5)  # fastText's model_name::sup; loss_name hs, ns, softmax, ova


class ModelFileError(ValueError):
    """A model.bin that fastText must not be given; the message says what is wrong with it."""


def check_model_file(path: Path | str) -> dict:
    """Walk a supervised fastText model file; return its main header fields or raise ModelFileError."""
    path = Path(path)
    size = path.stat().st_size
    if size < 8 + _ARGS.size + _DICTIONARY.size:
        raise ModelFileError(f"{path}: {size} bytes is too short for a fastText model (truncated?)")
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _Walk(data, path).model()


class _Walk:
    """A cursor over the model's bytes that checks every read against the file's end.

    data: the whole file (mmap); path: for the messages.
    """

    def __init__(self, data: mmap.mmap, path: Path):
        self.data, self.path, self.at = data, path, 0

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: {what} (at byte {self.at:,} of {len(self.data):,}); "
                              "the file is damaged or not a fastText model")

    def read(self, layout: struct.Struct, what: str) -> tuple:
        if self.at + layout.size > len(self.data):
            raise self.fail(f"the file ends inside the {what}")
        values = layout.unpack_from(self.data, self.at)
        self.at += layout.size
        return values

    def skip(self, count: int, what: str) -> None:
        if count < 0 or self.at + count > len(self.data):
            raise self.fail(f"the {what} needs {count:,} bytes, more than the file has left")
        self.at += count

    def model(self) -> dict:
        magic, version = self.read(struct.Struct("<2i"), "header")
        if (magic, version) != (MAGIC, VERSION):
            raise self.fail(f"header {magic}/{version} is not fastText's {MAGIC}/{VERSION}")
        dim, _, _, _, _, word_ngrams, loss, model, bucket, minn, maxn, _, _ = self.read(_ARGS, "arguments")
        if model != SUPERVISED:
            raise ModelFileError(f"{self.path} is a word-vector (unsupervised) fastText model, not a classifier")
        if loss not in LOSSES:
            raise self.fail(f"loss {loss} is none of fastText's")
        for name, value, low, high in (("dim", dim, 1, 10_000), ("wordNgrams", word_ngrams, 1, 20),
                                       ("bucket", bucket, 0, 1 << 30), ("minn", minn, 0, 100), ("maxn", maxn, 0, 100)):
            if not low <= value <= high:
                raise self.fail(f"argument {name}={value} is outside {low}..{high}")
        words, labels = self.dictionary()
        quantized = self.read(struct.Struct("<?"), "input flag")[0]
        rows, columns = self.matrix(quantized, "input matrix")
        if columns != dim or (not quantized and rows != words + bucket):
            raise self.fail(f"input matrix {rows}x{columns} does not fit {words} words + {bucket} buckets of dim {dim}")
        quantized_output = self.read(struct.Struct("<?"), "output flag")[0]
        rows, columns = self.matrix(quantized and quantized_output, "output matrix")
        if (rows, columns) != (labels, dim):
            raise self.fail(f"output matrix {rows}x{columns} does not fit {labels} labels of dim {dim}")
        if self.at != len(self.data):
            raise self.fail(f"{len(self.data) - self.at:,} bytes follow the model")
        return {"dim": dim, "words": words, "labels": labels, "bucket": bucket, "quantized": quantized}

    def dictionary(self) -> tuple[int, int]:
        size, words, labels, _, prune_size = self.read(_DICTIONARY, "dictionary header")
        if not (words >= 0 and labels >= 1 and size == words + labels):
            raise self.fail(f"dictionary of {size} entries does not hold {words} words and {labels} labels")
        for _ in range(size):
            end = self.data.find(b"\0", self.at)
            if end < 0:
                raise self.fail("the file ends inside the dictionary")
            self.at = end + 1
            self.read(_ENTRY, "dictionary")
        self.skip(max(prune_size, 0) * 8, "pruned-word index")
        return words, labels

    def matrix(self, quantized: bool, what: str) -> tuple[int, int]:
        if not quantized:
            rows, columns = self.read(_DENSE, what)
            if rows < 0 or columns < 0:
                raise self.fail(f"{what} of {rows}x{columns}")
            self.skip(rows * columns * 4, what)
            return rows, columns
        norm, rows, columns, code_size = self.read(_QUANT, what)
        self.skip(code_size, f"{what} codes")
        self.product_quantizer(what)
        if norm:
            self.skip(rows, f"{what} norm codes")
            self.product_quantizer(f"{what} norms")
        return rows, columns

    def product_quantizer(self, what: str) -> None:
        dim = self.read(_PQ, f"{what} quantizer")[0]
        self.skip(dim * KSUB * 4, f"{what} centroids")
