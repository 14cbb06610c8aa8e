"""The ``train`` command's options, generated from `MultimodalSentimentClassifier` itself.

Each estimator parameter becomes one option: its name, default, accepted values and help text
come from ``get_params()`` and the class's numpydoc docstring, so the command line cannot fall
behind the estimator. The few deliberate departures are listed at the top of this module.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import json
import re
from dataclasses import dataclass

# Where ``train`` deliberately departs from the estimator; every other parameter becomes an
# option named, typed, defaulted and explained by the estimator itself (`train_options`).
SKIPPED = {"callbacks": "it takes Python objects (skorch callbacks)",
           "warm_start": "each train command fits a new model"}
ALIASES = {"max_epochs": ("--epochs",), "random_state": ("--seed",)}
CLI_DEFAULTS = {"verbose": 1}  # progress bars on in a shell
ZERO_MEANS_NONE = {"micro_batch_size": "whole batches",
                   "validation_fraction": "no hold-out, train on everything"}
# Parameters whose listed values are not the only ones: what else they take.
OPEN_CHOICES = {"device": "any torch device such as cuda:1"}
# Types a command line can give; others (SentenceTransformer, torch.nn.Module, RandomState)
# are reachable only through their names or not at all.
SCALAR_KINDS = {"bool": "BOOL", "int": "INT", "float": "FLOAT", "str": "STR", "Path": "PATH",
                "dict": "JSON", "None": "none"}
KIND_WORDS = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a text",
              "Path": "a path", "dict": "a JSON object", "None": "none"}


def docstring_parameters(obj) -> dict[str, tuple[str, str]]:
    """The "Parameters" section of a numpydoc docstring.

    Parameters
    ----------
    obj : object
        A class or function with a numpydoc docstring.

    Returns
    -------
    dict
        Each parameter's name mapped to ``(type, description)``: the text after the colon of
        its first line (e.g. ``'int, default=3'``) and its indented description as one line.
        Entries that name several parameters (``a, b : int``) give each of them.

    Examples
    --------
    >>> class Sum:
    ...     '''Parameters
    ...     ----------
    ...     a, b : int, default=1
    ...         The numbers.
    ...         Any two.
    ...     '''
    >>> docstring_parameters(Sum)["b"]
    ('int, default=1', 'The numbers. Any two.')
    """
    lines = (inspect.getdoc(obj) or "").splitlines()

    def is_header(i: int) -> bool:
        return (i + 1 < len(lines) and bool(lines[i].strip()) and not lines[i][0].isspace()
                and re.fullmatch(r"-{3,}", lines[i + 1].strip()) is not None)

    start = next((i + 2 for i in range(len(lines)) if is_header(i)
                  and lines[i].strip() == "Parameters"), None)
    if start is None:
        return {}
    entries: list[tuple[list[str], str, list[str]]] = []
    for i in range(start, len(lines)):
        line = lines[i]
        if is_header(i):
            break
        if line.strip() and not line[0].isspace():
            head, _, spec = line.partition(":")
            entries.append(([n.strip() for n in head.split(",")], spec.strip(), []))
        elif line.strip() and entries:
            entries[-1][2].append(line.strip())
    return {name: (spec, " ".join(text)) for names, spec, text in entries for name in names}


def first_sentence(text: str) -> str:
    """The first sentence of a docstring description, with its reST markup removed.

    Parameters
    ----------
    text : str
        A description, such as one of `docstring_parameters`.

    Returns
    -------
    str

    Examples
    --------
    >>> first_sentence("Upper bound on ``max_epochs``, e.g. 3. More.")
    'Upper bound on max_epochs, e.g. 3.'
    """
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"`([^`]*)`", r"\1", text).strip()
    for match in re.finditer(r"[.!?](?=\s|$)", text):
        if not re.search(r"\b(e\.g|i\.e)\.$", text[:match.end()]):
            return text[:match.end()]
    return text


@dataclass(frozen=True)
class EstimatorOption:
    """One estimator parameter as a ``train`` option.

    Parameters
    ----------
    name : str
        The parameter, e.g. ``"max_epochs"``; the option is ``--max-epochs``.
    default : object
        The option's default (the estimator's, unless `CLI_DEFAULTS` says otherwise).
    types : str, default=""
        The docstring's type line without its default, e.g. ``'int, None or "auto"'``.
    summary : str, default=""
        The first sentence of the docstring's description.
    estimator_default : object, default=None
        The estimator's own default.
    """

    name: str
    default: object
    types: str = ""
    summary: str = ""
    estimator_default: object = None

    @property
    def flags(self) -> tuple[str, ...]:
        """``--name-with-dashes`` and its aliases."""
        return ("--" + self.name.replace("_", "-"), *ALIASES.get(self.name, ()))

    @property
    def choices(self) -> list | None:
        """The values listed in braces on the type line (``{"a", "b"}``), or None."""
        found = re.search(r"\{([^}]*)\}", self.types)
        if found is None:
            return None
        return [_literal(item) for item in found.group(1).split(",") if item.strip()]

    @property
    def closed_choices(self) -> list | None:
        """The only values the option takes (None too where allowed), or None if open."""
        if self.choices is None or self.name in OPEN_CHOICES:
            return None
        return self.choices + ([None] if "None" in self.kinds else [])

    @property
    def literals(self) -> list:
        """Values the type line names: the choices and quoted values such as ``"auto"``."""
        rest = re.sub(r"\{[^}]*\}", "", self.types)
        quoted = [_literal(t) for t in _type_words(rest) if t[:1] in "'\""]
        return (self.choices or []) + quoted

    @property
    def kinds(self) -> set[str]:
        """The type names of the type line (``int``, ``None``, ...), and of the default
        where it is not one of the listed values."""
        rest = re.sub(r"\{[^}]*\}", "", self.types)
        words = {t for t in _type_words(rest) if t[:1] not in "'\""}
        default = self.estimator_default
        if default is None or default not in self.literals:
            words.add("None" if default is None else type(default).__name__)
        return words

    @property
    def metavar(self) -> str | None:
        """What the help shows as the value; None where argparse lists the choices."""
        if self.closed_choices is not None:
            return None
        values = [str(v) for v in self.literals]
        values += [SCALAR_KINDS[k] for k in SCALAR_KINDS if k in self._scalar_kinds]
        return "|".join(dict.fromkeys(values)) or "VALUE"

    @property
    def expected(self) -> str:
        """The accepted values in words, for error messages."""
        words = [repr(v) for v in self.literals]
        words += [KIND_WORDS[k] for k in KIND_WORDS if k in self._scalar_kinds]
        if self.name in OPEN_CHOICES:
            words.append(OPEN_CHOICES[self.name])
        words = list(dict.fromkeys(words)) or ["a value"]
        return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]

    @property
    def _scalar_kinds(self) -> set[str]:
        """The kinds a command line can give (a path stands for a text too)."""
        kinds = self.kinds & set(SCALAR_KINDS)
        return kinds - {"str"} if "Path" in kinds else kinds

    @property
    def help(self) -> str:
        """The summary, the meaning of 0 where it has one, and the default."""
        note = ""
        if self.name in ZERO_MEANS_NONE:
            note = f"; 0 or none: {ZERO_MEANS_NONE[self.name]}"
        if self.name in OPEN_CHOICES and self.choices:
            note += f"; {', '.join(map(str, self.choices))} or {OPEN_CHOICES[self.name]}"
        default = f"default: {self.default}"
        if self.default != self.estimator_default:
            default += f"; the estimator's: {self.estimator_default}"
        return f"{self.summary} ({default}{note})".strip().replace("%", "%%")

    def parse(self, text: str):
        """Turn one command-line value into the parameter's value.

        Parameters
        ----------
        text : str
            The value as typed: a number, a listed name, ``none`` for None, a JSON object
            for a dict, or any text where the parameter takes a string.

        Returns
        -------
        object

        Raises
        ------
        argparse.ArgumentTypeError
            Where the value fits none of the parameter's types.
        """
        kinds = self.kinds
        if "None" in kinds and text.strip().lower() in ("none", "null"):
            return None
        for literal in self.literals:
            if text == str(literal) or text.lower() == str(literal).lower():
                return literal
        if self.closed_choices is not None:
            raise argparse.ArgumentTypeError(f"expected {self.expected}; got {text!r}")
        if "bool" in kinds and text.lower() in ("true", "false", "1", "0", "yes", "no"):
            return text.lower() in ("true", "1", "yes")
        for kind, convert in (("int", int), ("float", float)):
            if kind in kinds:
                try:
                    value = convert(text)
                except ValueError:
                    continue
                return None if value == 0 and self.name in ZERO_MEANS_NONE else value
        if "dict" in kinds and text.lstrip().startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise argparse.ArgumentTypeError(
                    f"expected {self.expected}; {text!r} is not valid JSON ({exc})") from None
            if isinstance(value, dict):
                return value
        if kinds & {"str", "Path"} or self.name in OPEN_CHOICES:
            return text
        raise argparse.ArgumentTypeError(f"expected {self.expected}; got {text!r}")


def _type_words(types: str) -> list[str]:
    """The alternatives of a type line: ``'int, None or "auto"'`` -> int, None, "auto"."""
    words = re.split(r",|\bor\b", types)
    return [w.strip() for w in words if w.strip() and w.strip() != "optional"]


def _literal(item: str):
    """A value listed on a type line, unquoted (``'"auto"'`` -> ``'auto'``)."""
    item = item.strip()
    try:
        return ast.literal_eval(item)
    except (ValueError, SyntaxError):
        return item


@functools.lru_cache(maxsize=1)
def train_options() -> tuple[EstimatorOption, ...]:
    """Every parameter of `MultimodalSentimentClassifier` a command line can give.

    Names and defaults come from ``get_params()``, in the order of the constructor; types
    and help text from the class docstring's "Parameters" section. `SKIPPED` parameters are
    left out; `CLI_DEFAULTS` replace some defaults.

    Returns
    -------
    tuple of EstimatorOption
    """
    from .classifier import MultimodalSentimentClassifier

    params = MultimodalSentimentClassifier().get_params(deep=False)
    order = list(inspect.signature(MultimodalSentimentClassifier).parameters)
    docs = docstring_parameters(MultimodalSentimentClassifier)
    options = []
    for name in sorted(params, key=lambda n: order.index(n) if n in order else len(order)):
        if name in SKIPPED:
            continue
        spec, description = docs.get(name, ("", ""))
        types = re.split(r",?\s*\bdefault\b", spec)[0].strip().rstrip(",")
        options.append(EstimatorOption(
            name=name, default=CLI_DEFAULTS.get(name, params[name]), types=types,
            summary=first_sentence(description), estimator_default=params[name]))
    return tuple(options)


def parse_param(text: str) -> tuple[str, object]:
    """One ``--param KEY=VALUE``: the estimator parameter and its parsed value.

    Parameters
    ----------
    text : str
        ``KEY=VALUE``; the key as the parameter's name (dashes or underscores).

    Returns
    -------
    tuple of (str, object)

    Raises
    ------
    argparse.ArgumentTypeError
        For a missing ``=``, an unknown or skipped parameter, or a value of the wrong type.
    """
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if key in SKIPPED:
        raise argparse.ArgumentTypeError(
            f"{key} cannot be given on the command line: {SKIPPED[key]}")
    options = {option.name: option for option in train_options()}
    if key not in options:
        raise argparse.ArgumentTypeError(
            f"unknown parameter {key!r}; MultimodalSentimentClassifier takes "
            f"{', '.join(sorted(options))}")
    try:
        return key, options[key].parse(value)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{key}: {exc}") from None


def estimator_params(args: argparse.Namespace) -> dict:
    """The classifier's parameters from parsed ``train`` arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The result of ``build_parser().parse_args(["train", ...])``.

    Returns
    -------
    dict
        One value per `train_options` entry; ``--param`` values override the options.
    """
    params = {option.name: getattr(args, option.name) for option in train_options()}
    params.update(dict(args.param_overrides or []))
    return params
