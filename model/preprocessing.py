"""Text cleaning shared by training and serving.

The artifact records the name and version of the cleaning it was trained with
(`PREPROCESSING`); serving looks the function up by that record, so a model is
never fed text cleaned differently from its training data. Change the output of
`clean_text` for any input and you must bump `VERSION`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

NAME = "tweet"
VERSION = 1
PREPROCESSING = {"name": NAME, "version": VERSION}

URL_TOKEN = "<url>"
USER_TOKEN = "<user>"

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
_ELONGATED = re.compile(r"(.)\1{2,}")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
# Emoticons carry much of the feeling in short check-in messages, so they are
# kept whole: :) :-( ;D :P :'( <3 xD =) and their mirrored forms.
_EMOTICON = r"(?:[:;=8][\-o*']?[)\](\[dDpP/\\|oO*@]|[)\](\[dDpP/\\|*][\-o*']?[:;=8]|<3+|</3|[xX][dD]\b)"
_TOKEN = re.compile(
    rf"{_EMOTICON}|<url>|<user>|[^\W_]+(?:['\-][^\W_]+)*|[^\w\s]+|_+",
    re.UNICODE,
)


def clean_text(text: str) -> str:
    """Return `text` as space-separated lowercase tokens.

    HTML entities are decoded; URLs and @mentions become `<url>` and `<user>`;
    hashtags become their words; any character repeated three times or more is
    cut to two (loooove -> loove, !!!! -> !!); words, emoticons and runs of
    punctuation become tokens. The function is idempotent:
    clean_text(clean_text(t)) == clean_text(t).
    """
    text = html.unescape(text).translate(_APOSTROPHES)
    # Each pattern only where its mark is (a few µs each, and a request often has none of them).
    if "://" in text or "www." in text.lower():
        text = _URL.sub(f" {URL_TOKEN} ", text)
    if "@" in text:
        text = _MENTION.sub(f" {USER_TOKEN} ", text)
    if "#" in text:
        text = _HASHTAG.sub(r"\1", text)
    text = _ELONGATED.sub(r"\1\1", text)
    return " ".join(_TOKEN.findall(text)).lower()


def normalize_whitespace(text: str) -> str:
    """Only fold whitespace: what a bare BlazingText model (trained on text
    tokenized by its user) is given."""
    return " ".join(text.split())


_PREPROCESSORS: dict[tuple[str, int], Callable[[str], str]] = {
    (NAME, VERSION): clean_text,
    ("none", 1): normalize_whitespace,
}


def preprocessor(spec: dict) -> Callable[[str], str]:
    """The cleaning function an artifact's manifest names, e.g. {"name": "tweet", "version": 1}."""
    key = (spec.get("name"), spec.get("version"))
    if key not in _PREPROCESSORS:
        known = ", ".join(f"{n} v{v}" for n, v in _PREPROCESSORS)
        raise ValueError(f"the model was trained with text preprocessing {key[0]} v{key[1]}, "
                         f"which this server does not have (it has: {known})")
    return _PREPROCESSORS[key]
