"""The model artifact's manifest: what serving needs to know about a trained model.

`/opt/ml/model` holds the algorithm's own files (fastText's `model.bin`, or the
LSTM's weights) plus `manifest.json`, which names the algorithm, the labels, the
text preprocessing, and records how the model was made (hyperparameters, data,
metrics). A folder with only a `model.bin`, as SageMaker's BlazingText leaves
it, is served too (see `model.predictor.load`).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# What to do about a model made by another version of this image (format, cleaning, lexicon).
SERVE_OR_RETRAIN = "serve it with the image that trained it, or train it again with this one"


def model_files(manifest: dict) -> list[str]:
    """The files a model consists of: the manifest's `*_file` fields (what its save() returned),
    and those of its ensemble's members (recorded in its `combiner`, see model/combiner.py)."""
    members = (manifest.get("combiner") or {}).get("members", [])
    return sorted({value for record in (manifest, *members) for key, value in record.items() if key.endswith("_file")})


def write_manifest(model_dir: Path, **fields: Any) -> dict:
    """Write manifest.json with `fields` plus the format version, creation time and a
    model version derived from the bytes of the model's files."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "model_version": model_version(model_dir, model_files(fields)),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **fields,
    }
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return manifest


def read_manifest(model_dir: Path) -> dict | None:
    path = model_dir / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: manifest format {manifest.get('format_version')} is not "
                         f"the {FORMAT_VERSION} this server reads: {SERVE_OR_RETRAIN}")
    return manifest


def verify(model_dir: Path, manifest: dict) -> None:
    """Raise ValueError when the model's files are not the ones its manifest was written for
    (a truncated copy, a partial upload, a file swapped in by hand)."""
    files = model_files(manifest)
    missing = [name for name in files if not (model_dir / name).is_file()]
    if missing:
        raise ValueError(f"{model_dir}: the manifest names {', '.join(missing)}, which is not there")
    found = model_version(model_dir, files)
    if found != manifest.get("model_version"):
        raise ValueError(f"{model_dir}: the model files do not match the manifest (model_version "
                         f"{manifest.get('model_version')!r}, files hash to {found!r}): damaged or replaced?")


def model_version(model_dir: Path, files: list[str]) -> str:
    """A short hash of the model's files (not of other files left in the folder): the same
    bytes give the same version."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode())
        with (model_dir / name).open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]
