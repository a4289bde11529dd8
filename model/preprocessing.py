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
from functools import partial

from model.artifact import SERVE_OR_RETRAIN

NAME = "tweet"
VERSION = 5  # 5: "can't stop" marks only "stop"; 4: function words unmarked; 3: degree idioms unmarked;
#             2: negation marked; 1: unmarked (each served)
PREPROCESSING = {"name": NAME, "version": VERSION}
ENCODER_NAME, ENCODER_VERSION = "tweet-encoder", 1  # for_encoder; the encoder member's before it: ("none", 1)

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
# A bag of words reads "not bad" as "not" and "bad", both negative: the words just after a
# negation are marked as another word ("not neg-bad"). Two words, to the next punctuation
# (or "but"), scored best on held-out tweets (fastText alone: 81.0 % against 80.6 % for the
# whole clause and 80.9 % unmarked, 110k tweets); the combination's validation accuracy rose
# 0.843 -> 0.845 (default job) and 0.792 -> 0.801 (20,000 tweets, whose "not bad at all" it turned).
NEGATED_PREFIX = "neg-"
NEGATION_SCOPE = 2
# Tweets and check-ins often drop the apostrophe: "dont" is a negation too (20,000 tweets: 78.3 % -> 79.2 %).
_NEGATIONS = ("not|no|never|nothing|nobody|none|neither|nor|cannot|without|hardly|dont|cant|wont|isnt|didnt|"
              "doesnt|wasnt|aint|couldnt|wouldnt|shouldnt|havent|hasnt|arent|werent")
_NEGATION = re.compile(rf"(?:{_NEGATIONS}|\w+n't)")
_MAY_NEGATE = re.compile(rf"\b(?:{_NEGATIONS})\b|n't\b")
_SCOPE_ENDS = frozenset({"but", "however"})
# Words with no feeling of their own are neither marked nor counted within a negation's scope (version 4):
# "not bad at all" -> "not neg-bad at all", "doesn't make me happy" -> "doesn't neg-make me neg-happy",
# "not very good" -> "not very neg-good". Marked, "neg-at" was a word of its own, learnt from the negative
# tweets it occurs in ("can't sleep at all"), and the marks ran out before the word that mattered: the quick
# 20,000-tweet job's "not bad at all" 0.55-0.60 -> 0.89. Its price, on the Sentiment140 test: docs/model.md.
_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their",
    "some", "any", "all", "each", "every", "much",
    "i", "me", "you", "he", "him", "she", "it", "we", "us", "they", "them", "myself",
    "at", "to", "in", "on", "of", "for", "with", "by", "from", "about", "as", "into",
    "am", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "have", "has", "had",
    "very", "so", "too", "really", "quite",
})
# "Couldn't be better", "never felt happier", "can't get any worse": a negation that only says
# how much, not whether; the comparative's own feeling holds, so nothing is marked. Cut off here:
# the negations (never, and can/could + not), at most two linking words, and a comparative of
# feeling ("more"/"less" leave the feeling to the next word: "never been more ashamed"), or from
# version 4 "so" after "never" ("never been so happy").
_DEGREE_NEGATIONS = frozenset({"never", "can't", "cant", "cannot", "couldn't", "couldnt"})
_DEGREE_MODALS = frozenset({"can", "could"})  # "could not be happier"
_DEGREE_LINKS = frozenset({"be", "been", "have", "feel", "felt", "get", "got", "any", "ever", "look", "looked"})
_COMPARATIVES = frozenset({"better", "worse", "more", "less", "happier", "sadder", "prouder", "calmer", "luckier",
                           "lonelier", "angrier", "healthier", "stronger", "greater", "nicer", "lovelier"})
# "Can't stop crying", "couldn't help smiling": the negation is of the stopping, and the crying goes on
# (version 5). Only the verb is marked ("can't neg-stop crying"); version 4 marked "neg-crying" too, which
# VADER's negated words taught every model to read as positive ("not crying", model/lexicon.py).
_PERSISTENCE = frozenset({"stop", "help"})
_AROUND_A_WORD = ".,;:!?\"()"  # what a raw text's word may carry, stripped to compare it with the lists above


def clean_text(text: str) -> str:
    """Return `text` as space-separated lowercase tokens.

    HTML entities are decoded; URLs and @mentions become `<url>` and `<user>`;
    hashtags become their words; any character repeated three times or more is
    cut to two (loooove -> loove, !!!! -> !!); words, emoticons and runs of
    punctuation become tokens; the two words after a negation within its clause are
    marked, function words left as they are and not counted ("not bad at all" -> "not
    neg-bad at all"), unless the negation only says how much ("couldn't be better",
    "never been so happy" stay as they are); after "can't stop" or "can't help" only that
    verb is marked ("can't neg-stop crying"). The function is idempotent:
    clean_text(clean_text(t)) == clean_text(t).
    """
    return _negations_marked(text, VERSION)


def _negations_marked(text: str, version: int) -> str:
    """Version 2 and later of clean_text: negations marked as `version` marks them."""
    cleaned = _clean_text_unmarked(text)
    if not _MAY_NEGATE.search(cleaned):  # most messages: no negation to mark (~4 µs saved)
        return cleaned
    return " ".join(_marked_negations(cleaned.split(" "), version))


def _clean_text_unmarked(text: str) -> str:
    """Version 1 of clean_text: the same tokens, negations unmarked."""
    text = _links_and_mentions(html.unescape(text).translate(_APOSTROPHES), URL_TOKEN, USER_TOKEN)
    if "#" in text:  # each pattern only where its mark is (a few µs each; a request often has none)
        text = _HASHTAG.sub(r"\1", text)
    text = _ELONGATED.sub(r"\1\1", text)
    return " ".join(_TOKEN.findall(text)).lower()


def _marked_negations(tokens: list[str], version: int) -> list[str]:
    words = [token.removeprefix(NEGATED_PREFIX) for token in tokens]  # already marked: clean_text is idempotent
    marked, left = [], 0
    for i, (token, word) in enumerate(zip(tokens, words)):
        if not word[:1].isalnum() or word in _SCOPE_ENDS:
            left = 0  # punctuation, an emoticon, <url>: the clause ends
        elif left and not (version >= 4 and word in _FUNCTION_WORDS):
            token, left = NEGATED_PREFIX + word, left - 1
        marked.append(token)
        if _NEGATION.fullmatch(word) and not (version >= 3 and _is_degree_idiom(words, i, so_intensifies=version >= 4)):
            left = 1 if version >= 5 and words[i + 1:i + 2] and words[i + 1] in _PERSISTENCE else NEGATION_SCOPE
    return marked


def _is_degree_idiom(words: list[str], negation: int, so_intensifies: bool = False) -> bool:
    """Whether the negation at `negation` starts a degree idiom ("couldn't be better"; with
    `so_intensifies`, "never been so happy" too)."""
    if not (words[negation] in _DEGREE_NEGATIONS
            or (words[negation] == "not" and negation and words[negation - 1] in _DEGREE_MODALS)):
        return False
    for word in words[negation + 1:negation + 4]:
        if word in _COMPARATIVES or (so_intensifies and word == "so" and words[negation] == "never"):
            return True
        if word not in _DEGREE_LINKS:
            return False
    return False


def without_degree_negations(text: str) -> str:
    """Raw `text` with the negation of each degree idiom taken out, the rest as it was
    ("Couldn't be better!" -> "be better!"): what VADER (model.lexicon) should read, for it
    reads them as plain negations. The idioms are found by the rule clean_text uses."""
    lowered = text.translate(_APOSTROPHES).lower()  # clean_text's apostrophes and case
    if not _MAY_NEGATE.search(lowered):
        return text
    pieces = text.split()
    words = [word.strip(_AROUND_A_WORD) for word in lowered.split()]
    kept = [piece for i, piece in enumerate(pieces) if not _is_degree_idiom(words, i)]
    return text if len(kept) == len(pieces) else " ".join(kept)


def without_persistence_negations(text: str) -> str:
    """Raw `text` with each negated "stop" or "help" that a word of content follows taken out, the rest
    as it was ("I can't stop crying" -> "I crying"): what VADER should read, for it reads the crying as
    negated. "It didn't help." and "did not help at all" keep their negation: nothing goes on after it."""
    lowered = text.translate(_APOSTROPHES).lower()
    if not (any(verb in lowered for verb in _PERSISTENCE) and _MAY_NEGATE.search(lowered)):  # most: neither verb
        return text
    pieces = lowered.split()
    out = {i + step for i in range(len(pieces) - 2) for step in (0, 1)
           if _NEGATION.fullmatch(pieces[i]) and pieces[i + 1] in _PERSISTENCE and pieces[i + 2][:1].isalnum()
           and pieces[i + 2].strip(_AROUND_A_WORD) not in _FUNCTION_WORDS}
    return text if not out else " ".join(piece for i, piece in enumerate(text.split()) if i not in out)


def normalize_whitespace(text: str) -> str:
    """Only fold whitespace: what a bare BlazingText model (trained on text
    tokenized by its user) is given."""
    return " ".join(text.split())


def for_encoder(text: str) -> str:
    """What the sentence encoder reads (model/encoder_member.py): HTML entities decoded, URLs and
    @mentions as `http` and `@user` (as TweetEval's tweets have them), whitespace folded; case,
    punctuation, emoji and negations as written, for the encoder's own tokenizer. A handle's word
    pieces ("@SushiGo": "@", "sushi", "##go") would be words of the sentence to it."""
    return normalize_whitespace(_links_and_mentions(html.unescape(text), "http", "@user"))


def _links_and_mentions(text: str, link: str, mention: str) -> str:
    """`text` with its URLs as `link` and its @mentions as `mention`, each pattern only where its mark is
    (a few µs each, and a request often has none of them)."""
    if "://" in text or "www." in text.lower():
        text = _URL.sub(f" {link} ", text)
    if "@" in text:
        text = _MENTION.sub(f" {mention} ", text)
    return text


_PREPROCESSORS: dict[tuple[str, int], Callable[[str], str]] = {
    (NAME, VERSION): clean_text,
    **{(NAME, version): partial(_negations_marked, version=version) for version in (4, 3, 2)},
    (NAME, 1): _clean_text_unmarked,
    ("none", 1): normalize_whitespace,
    (ENCODER_NAME, ENCODER_VERSION): for_encoder,
}


def preprocessor(spec: dict) -> Callable[[str], str]:
    """The cleaning function an artifact's manifest names, e.g. {"name": "tweet", "version": 2}."""
    key = (spec.get("name"), spec.get("version"))
    if key not in _PREPROCESSORS:
        known = ", ".join(f"{n} v{v}" for n, v in _PREPROCESSORS)
        raise ValueError(f"the model was trained with text preprocessing {key[0]} v{key[1]}, "
                         f"which this server does not have (it has: {known}): {SERVE_OR_RETRAIN}")
    return _PREPROCESSORS[key]
