"""Social-media text normalisation: posts rewritten as the sentences a text encoder was
trained on (``text_normalization="tweet"``).

Sentence encoders such as MiniLM learned from edited English: a link, a user handle or a
run-together hashtag comes out of their tokenizers as a string of meaningless word pieces,
and most emoji as ``[UNK]``. `normalize_tweet` rewrites those parts into words:

- well-formed HTML entities are decoded (``&amp;`` becomes ``&``) and a leading retweet marker
  (``RT @user:``) is dropped;
- links become the word ``url`` and user handles ``@user``;
- hashtags lose the ``#`` and are split at case changes (in any script), digits and
  underscores (``#HappyValentine2015`` becomes ``Happy Valentine 2015``); a hashtag in one
  case (``#happyvalentine``) stays one word;
- emoji become their names (``emoji.demojize``: a red heart becomes ``red heart``);
- runs of white space collapse to one space.
"""

from __future__ import annotations

import functools
import html
import re

_RETWEET = re.compile(r"^\s*RT\s+@\w+\s*:?\s*")
# A link ends before trailing punctuation: "(see http://x.co/a)." keeps its ")."
_URL = re.compile(r"(?<![\w.])(?:https?://|www\.)\S*[^\s.,;:!?)\]}'\"\u2026]", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_HASHTAG = re.compile(r"(?<![\w#&])#(\w+)")
# Only well-formed entities: "&amp;" and "&#39;", not the bare "&not" of "&notice".
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_SPACE = re.compile(r"\s+")


def _split_words(tag: str) -> str:
    """A hashtag's words: split at underscores, lower-to-upper case changes (any script),
    an upper-case run before a capitalised word, and letter/digit changes."""
    out: list[str] = []
    for k, ch in enumerate(tag):
        prev = tag[k - 1] if k else ""
        nxt = tag[k + 1] if k + 1 < len(tag) else ""
        boundary = bool(prev) and (
            (prev.islower() and ch.isupper())
            or (prev.isupper() and ch.isupper() and nxt.islower())
            or (prev.isalpha() and ch.isdigit()) or (prev.isdigit() and ch.isalpha()))
        out.append((" " if boundary else "") + (" " if ch == "_" else ch))
    return " ".join("".join(out).split())


def _emoji_name(chars: str, data: dict) -> str:
    return " " + data.get("en", "").strip(":").replace("_", " ") + " "


@functools.lru_cache(maxsize=1)
def _replace_emoji():
    import emoji

    return emoji.replace_emoji


def normalize_tweet(text):
    """A social-media post rewritten in plain words (see the module's description).

    Parameters
    ----------
    text : str
        One post; anything else (None, NaN) is returned as it is.

    Returns
    -------
    str
        The rewritten post. A link or a handle keeps a word (``url``, ``@user``), so a post
        made only of one stays a text; a post made only of a retweet marker becomes ``""``
        (a missing text, in `normalize_texts`).

    Examples
    --------
    >>> normalize_tweet("RT @news: So proud of you @Ann_B! #HappyValentine2015 "
    ...                 "\\u2764\\ufe0f (http://t.co/x1) &amp; more")
    'So proud of you @user! Happy Valentine 2015 red heart (url) & more'
    """
    if not isinstance(text, str):
        return text
    text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    text = _MENTION.sub("@user", _URL.sub("url", _RETWEET.sub("", text)))
    text = _HASHTAG.sub(lambda m: _split_words(m.group(1)), text)
    text = _replace_emoji()(text, replace=_emoji_name)
    return _SPACE.sub(" ", text).strip()


TEXT_NORMALIZATIONS = {None: None, "tweet": normalize_tweet}


def normalize_texts(texts: list, normalization: str | None) -> list:
    """``texts`` (strings or ``None`` for a missing text) under a named normalisation.

    Parameters
    ----------
    texts : list of str or None
        Cleaned texts (`mmsentiment.inputs.extract_columns`).
    normalization : {"tweet", None}
        A key of `TEXT_NORMALIZATIONS`; ``None`` returns ``texts`` as they are.

    Returns
    -------
    list of str or None

    Raises
    ------
    ValueError
        For an unknown normalisation.

    Examples
    --------
    >>> normalize_texts(["#GoodMorning", None], "tweet")
    ['Good Morning', None]
    """
    if normalization not in TEXT_NORMALIZATIONS:
        raise ValueError(f"text_normalization must be one of {list(TEXT_NORMALIZATIONS)}, "
                         f"got {normalization!r}")
    rewrite = TEXT_NORMALIZATIONS[normalization]
    if rewrite is None:
        return texts
    return [None if t is None else (rewrite(t) or None) for t in texts]
