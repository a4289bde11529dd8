"""The sentence encoders' speed, in tokens a second: what model/encoder.py's
EncoderSpec.tokens_per_second stands for (serving answers a request the encoder would take longer on
than its share of the timeout without it: model/combiner.py's `for_request`).

Encodes real tweets (Sentiment140's, or the bundled sample's) and long texts (the sample's
movie snippets of 200 characters or more), on one math thread (a serving worker's, see
SENTIMENT_MATH_THREADS) and on two, each three times; prints tokens/s and messages/s.

    python bench/encoder_speed.py [--texts 1000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from common import DATA

from container.sample import SAMPLE
from model.datasets import read_path
from model.encoder import ENCODERS, encoder
from model.threads import limit_math_threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1000)
    args = parser.parse_args()
    tweets_file = DATA / "sentiment140" / "training.110k.processed.noemoticon.csv"
    sample = [e.text for e in read_path(SAMPLE)[0]]
    tweets = [e.text for e in read_path(tweets_file)[0]] if tweets_file.exists() else sample
    random.Random(0).shuffle(tweets)
    sets = {"tweets": tweets[:args.texts], "long texts": [t for t in sample if len(t) >= 200][:args.texts // 4]}
    for spec in ENCODERS.values():  # side by side in one run: this machine's speed varies from run to run
        model = encoder(spec.name)
        model.embed(sets["tweets"][:64])  # warm-up
        for threads in (1, 2):
            limit_math_threads(threads)
            for name, texts in sets.items():
                tokens = model.count_tokens(texts)
                for _ in range(3):
                    started = time.perf_counter()
                    model.embed(texts)
                    seconds = time.perf_counter() - started
                    print(f"{spec.name}, {threads} thread{'s' * (threads > 1)}, {len(texts):,} {name} "
                          f"({tokens:,} tokens): "
                          f"{seconds:.1f} s, {tokens / seconds:,.0f} tokens/s, {len(texts) / seconds:,.0f} messages/s",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
