"""Regenerate the README's hyperparameter tables from the algorithms' specs.

    python docs/update_readme.py        # rewrite README.md in place
tests/test_docs.py fails when README.md differs from what this renders.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from container.training import JOB_SPEC  # noqa: E402
from model.predictor import ALGORITHMS, algorithm  # noqa: E402

README = ROOT / "README.md"


def render(text: str) -> str:
    """`text` with every `<!-- hyperparameters:NAME -->` ... `<!-- /hyperparameters -->` block filled in
    (NAME: an algorithm, or `job` for the hyperparameters of the training job itself)."""
    def table(match: re.Match) -> str:
        name = match.group(1)
        if name != "job" and name not in ALGORITHMS:
            raise ValueError(f"README names unknown algorithm {name!r}")
        spec = JOB_SPEC if name == "job" else algorithm(name).SPEC
        return f"<!-- hyperparameters:{name} -->\n{spec.markdown()}\n<!-- /hyperparameters -->"
    return re.sub(r"<!-- hyperparameters:(\w+) -->.*?<!-- /hyperparameters -->", table, text, flags=re.S)


if __name__ == "__main__":
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
