"""Social-media text normalisation: posts rewritten as the sentences a text encoder was
trained on (``text_normalization="tweet"``).

Sentence encoders such as MiniLM learned from edited English: a link, a user handle or a
run-together hashtag comes out of their tokenizers as a string of meaningless word pieces,
and most emoji as ``[UNK]``. `normalize_tweet` rewrites those parts into words:

- HTML entities are decoded (``&amp;`` becomes ``&``) and a leading retweet marker
  (``RT @user:``) is dropped;
- links become the word ``url`` and user handles ``@user``;
- hashtags lose the ``#`` and are split at case changes, digits and underscores
  (``#HappyValentine2015`` becomes ``Happy Valentine 2015``);
- emoji become their names (``emoji.demojize``: a red heart becomes ``red heart``);
- runs of white space collapse to one space.
"""

from __future__ import annotations

import functools
import html
import re

_RETWEET = re.compile(r"^\s*RT\s+@\w+\s*:?\s*")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
# Word boundaries inside a hashtag: lower->Upper, UPPER->Upper lower, letter<->digit.
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|"
                    r"(?<=\d)(?=[A-Za-z])")
_SPACE = re.compile(r"\s+")


def _split_hashtag(match: re.Match) -> str:
    return " ".join(_CAMEL.sub(" ", match.group(1).replace("_", " ")).split())


@functools.lru_cache(maxsize=1)
def _demojize():
    import emoji

    return emoji.demojize


def normalize_tweet(text: str) -> str:
    """A social-media post rewritten in plain words (see the module's description).

    Parameters
    ----------
    text : str
        One post.

    Returns
    -------
    str
        The rewritten post. A link or a handle keeps a word (``url``, ``@user``), so a post
        made only of one stays a text; a post made only of a retweet marker becomes ``""``
        (a missing text, in `normalize_texts`).

    Examples
    --------
    >>> normalize_tweet("RT @news: So proud of you @Ann_B! #HappyValentine2015 "
    ...                 "\\u2764\\ufe0f http://t.co/x1 &amp; more")
    'So proud of you @user! Happy Valentine 2015 red heart url & more'
    """
    text = _RETWEET.sub("", html.unescape(text))
    text = _MENTION.sub("@user", _URL.sub(" url ", text))
    text = _HASHTAG.sub(_split_hashtag, text)
    text = _demojize()(text, delimiters=(" ", " "))
    text = re.sub(r"(?<=\w)_(?=\w)", " ", text)  # demojized names: red_heart
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
