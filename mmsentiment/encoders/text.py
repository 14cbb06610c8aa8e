"""Text encoders: any sentence-transformers model, fine-tunable inside the fusion network.

A model is given by name, by folder or as a ``SentenceTransformer`` object.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch
from torch import nn

from .registry import OFFLINE_TEXT_ENCODERS, canonical_text_name, unavailable


@functools.lru_cache(maxsize=4)
def _load_pristine(name: str):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar on every fit
    canonical = canonical_text_name(name)
    offline = OFFLINE_TEXT_ENCODERS.get(canonical)
    if offline is not None and offline.path() is not None:
        return SentenceTransformer(str(offline.path()), device="cpu")
    if Path(name).expanduser().is_dir():
        return SentenceTransformer(str(Path(name).expanduser()), device="cpu")
    try:
        return SentenceTransformer(name, device="cpu")
    except Exception as exc:  # the hub client raises many types; all mean "not available"
        raise unavailable("Text", name, exc, offline,
                          "a local sentence-transformers folder as text_encoder",
                          OFFLINE_TEXT_ENCODERS) from exc


def _module_name(model: nn.Module) -> str:
    from sentence_transformers import SentenceTransformer

    if not isinstance(model, SentenceTransformer):
        raise TypeError(
            f"A text encoder module must be a sentence_transformers.SentenceTransformer (it "
            f"brings its tokenizer and pooling), got {type(model).__name__}. Wrap a Hugging "
            "Face model with SentenceTransformer(modules=[models.Transformer(name), "
            "models.Pooling(dim)])."
        )
    # The hub name where the model card has one, else the transformer's type ("bert").
    card = getattr(model, "model_card_data", None)
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    source = getattr(card, "base_model", None) or getattr(config, "model_type", None)
    return "module:" + (source or "SentenceTransformer")


class TextEncoder(nn.Module):
    """A sentence-transformers model as a module that maps token ids to one vector per text.

    Loading goes through `mmsentiment.encoders.registry` (installed weights first).
    Each instance owns a private copy of the weights, so fine-tuning one never changes another.

    Parameters
    ----------
    name : str or sentence_transformers.SentenceTransformer
        A sentence-transformers model name (e.g. ``"all-MiniLM-L6-v2"``) or folder, or a
        ``SentenceTransformer`` object (copied; any Hugging Face model becomes one with
        ``SentenceTransformer(modules=[models.Transformer(...), models.Pooling(...)])``).

    Attributes
    ----------
    name : str
        The model name or folder, or ``"module:<base model or type>"`` for an object.
    model : sentence_transformers.SentenceTransformer
        The model (a private copy).
    dim : int
        Size of the sentence vector.

    Examples
    --------
    >>> enc = TextEncoder("all-MiniLM-L6-v2")
    >>> batch = enc.tokenize(["what a lovely day", "awful"])
    >>> enc(**batch).shape
    torch.Size([2, 384])
    >>> TextEncoder(enc.model).name  # a SentenceTransformer object
    'module:bert'
    """

    def __init__(self, name) -> None:
        super().__init__()
        if isinstance(name, nn.Module):
            self.name = _module_name(name)
            self.model = copy.deepcopy(name)
        else:
            self.name = name
            self.model = copy.deepcopy(_load_pristine(name))
        self.dim = int(self.model.get_embedding_dimension()
                       if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    @property
    def tokenizer(self):
        """The Hugging Face tokenizer of the model."""
        return self.model.tokenizer

    @property
    def max_length(self) -> int:
        """Longest token sequence the model takes; longer texts are truncated."""
        return int(self.model.max_seq_length)

    def cache_key(self) -> str:
        """Folder name for this encoder's outputs in the feature cache.

        Returns
        -------
        key : str
            The model name and a fingerprint of its current weights and truncation length
            (and, for a module object, of its code).
        """
        from ..hashing import fingerprint, module_code, slug

        # A module's layers and pooling are part of its identity; for names, the name says it.
        code = [module_code(self.model)] if self.name.startswith("module:") else []
        return f"text-{slug(self.name)}-" + fingerprint(
            self.name, self.max_length, type(self.tokenizer).__name__, "pooled", *code,
            *self.model.state_dict().values())

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Tokenize and pad to the longest text of this batch, rounded up to a multiple of
        8 tokens (never to a fixed length).

        Parameters
        ----------
        texts : list of str
            The texts; longer ones are truncated to `max_length` tokens.

        Returns
        -------
        batch : dict of str to torch.Tensor
            The model's keyword inputs: ``input_ids``, ``attention_mask`` and, where the
            tokenizer makes them, ``token_type_ids``.
        """
        return tokenize(self.tokenizer, self.max_length, texts)

    def set_gradient_checkpointing(self, enabled: bool) -> bool:
        """Recompute the transformer layers' activations in the backward pass instead of
        keeping them from the forward pass (on Hugging Face models that support activation
        checkpointing), or stop doing so.

        In a top-image fit with the attention head (320 MVSA posts) the peak fell from 2.39
        to 2.14 GB for 1.6x the epoch time (docs/performance.md). Evaluation and inference
        are unchanged. The non-reentrant variant runs without the hook that Hugging Face
        adds to make the embeddings' output require gradients, so the model stays picklable
        and frozen lower layers get no gradient.

        Parameters
        ----------
        enabled : bool
            Recompute (``True``) or keep (``False``).

        Returns
        -------
        bool
            Whether the model can do it (``False``: nothing changed).

        Examples
        --------
        >>> enc = TextEncoder("all-MiniLM-L6-v2")
        >>> enc.set_gradient_checkpointing(True), enc.gradient_checkpointing
        (True, True)
        """
        models = self._checkpointable()
        kwargs = {"use_reentrant": False}
        for model in models:
            if enabled:
                if hasattr(model, "activation_checkpointing_enable"):  # transformers 5.x
                    model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
                else:
                    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
                hooked = (getattr(model, "_require_grads_hooks", None) or
                          getattr(model, "_require_grads_hook", None))
                if hooked and hasattr(model, "disable_input_require_grads"):
                    model.disable_input_require_grads()
            elif _checkpointing(model):
                if hasattr(model, "activation_checkpointing_disable"):
                    model.activation_checkpointing_disable()
                else:
                    model.gradient_checkpointing_disable()
        return bool(models)

    @property
    def gradient_checkpointing(self) -> bool:
        """Whether the transformer layers recompute their activations in training."""
        return any(_checkpointing(m) for m in self._checkpointable())

    def _checkpointable(self) -> list[nn.Module]:
        """The Hugging Face models inside that support activation checkpointing."""
        return [m for m in self.model.modules()
                if getattr(m, "supports_gradient_checkpointing", False) and
                hasattr(m, "_set_gradient_checkpointing")]

    def transformer_layers(self) -> list[nn.Module]:
        """The stacked transformer blocks, lowest first (empty where none can be found)."""
        for module in self.model.modules():
            layers = getattr(module, "layer", None)
            if isinstance(layers, nn.ModuleList) and len(layers) > 0:
                return list(layers)
        return []

    def layer_groups(self) -> list[list[str]]:
        """The parameter names of this module in depth groups, lowest first.

        Everything outside the transformer layers (the embeddings) comes first, then each
        layer.

        Returns
        -------
        list of list of str
            Names as in ``self.named_parameters()``.
        """
        names = {module: name for name, module in self.named_modules()}
        layers = [[f"{names[layer]}.{p}" for p, _ in layer.named_parameters()]
                  for layer in self.transformer_layers()]
        in_layers = {name for layer in layers for name in layer}
        rest = [name for name, _ in self.named_parameters() if name not in in_layers]
        return [rest, *layers]

    def _run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             token_type_ids: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The sentence-transformers model's output features for a tokenized batch."""
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        return self.model(features)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self._run(input_ids, attention_mask, token_type_ids)["sentence_embedding"]


    @property
    def token_dim(self) -> int:
        """Size of the per-token vectors of `tokens` (the transformer's hidden size)."""
        first = self.model[0] if len(self.model) else None
        for method in ("get_embedding_dimension", "get_word_embedding_dimension"):
            if hasattr(type(first), method):  # the new name first (sentence-transformers 5+)
                return int(getattr(first, method)())
        return self.dim

    def tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token vectors and their mask, for fusion heads that attend over tokens.

        A model that does not expose its token embeddings gives its sentence vector as a
        sequence of one.

        Parameters
        ----------
        input_ids : torch.Tensor of shape (N, T)
            Token ids, as `tokenize` makes them.
        attention_mask : torch.Tensor of shape (N, T)
            1 for a real token, 0 for padding.
        token_type_ids : torch.Tensor of shape (N, T), default=None
            Segment ids, for models that take them.

        Returns
        -------
        tokens : torch.Tensor of shape (N, T, token_dim)
            The vectors.
        mask : torch.Tensor of shape (N, T), dtype bool
            True for a real token, False for padding.
        """
        out = self._run(input_ids, attention_mask, token_type_ids)
        tokens = out.get("token_embeddings")
        if tokens is None or tokens.shape[-1] != self.token_dim:
            vector = out["sentence_embedding"][:, None]
            return vector, torch.ones(vector.shape[:2], dtype=torch.bool, device=vector.device)
        return tokens, out["attention_mask"].bool()


def _checkpointing(model: nn.Module) -> bool:
    """Whether a Hugging Face model has activation checkpointing on (either spelling)."""
    name = ("is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing")
            else "is_gradient_checkpointing")
    return bool(getattr(model, name, False))


TOKEN_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")
# Batches are padded to a multiple of this many tokens. Each new input shape makes oneDNN
# build and cache new kernels; with every length of tweet its own shape, that cache grew a
# fit's memory by hundreds of MB (docs/guide/fusion-finetuning.md). A few more padded
# positions cost less than the kernels they spare.
PAD_MULTIPLE = 8


def tokenize(tokenizer, max_length: int, texts: list[str]) -> dict[str, torch.Tensor]:
    """Tokenize ``texts`` with dynamic padding and truncation.

    The batch is padded to its longest text, rounded up to a multiple of `PAD_MULTIPLE`
    tokens where ``max_length`` is one (else to the longest text).
    """
    multiple = PAD_MULTIPLE if max_length % PAD_MULTIPLE == 0 else None
    return dict(tokenizer(list(texts), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt",
                          pad_to_multiple_of=multiple))


def trim_padding(inputs: dict) -> dict:
    """``inputs`` without the trailing token positions that are padding in every row.

    A batch is padded to its longest text; a slice of it (a micro-batch) may be padded
    further than its own longest text needs. The tokenizer's tensors (``input_ids``,
    ``attention_mask``, ``token_type_ids``) lose the trailing positions that no row attends
    to, down to the next multiple of `PAD_MULTIPLE` (as `tokenize` pads); the encoder's
    outputs are unchanged (those positions are masked and come after
    every real token), only the work on them is saved. Padding on the left is left alone,
    since removing it would move the real tokens' positions. Other inputs are passed
    through, and inputs without ``attention_mask`` come back as given.

    Examples
    --------
    >>> mask = torch.zeros(2, 16, dtype=torch.long)
    >>> mask[0, :3], mask[1, :1] = 1, 1
    >>> x = {"input_ids": mask * 5, "attention_mask": mask, "pixels": torch.zeros(2, 3)}
    >>> trimmed = trim_padding(x)
    >>> trimmed["input_ids"].shape, trimmed["pixels"].shape
    (torch.Size([2, 8]), torch.Size([2, 3]))
    >>> left = {"input_ids": torch.tensor([[0, 5]]), "attention_mask": torch.tensor([[0, 1]])}
    >>> trim_padding(left)["input_ids"].tolist()
    [[0, 5]]
    """
    mask = inputs.get("attention_mask")
    if mask is None or mask.ndim != 2:
        return inputs
    used = mask.any(0)
    width = int(used.sum())
    if not bool(used[:width].all()):  # padding on the left
        return inputs
    width = min(-(-width // PAD_MULTIPLE) * PAD_MULTIPLE, mask.shape[1])
    if width == mask.shape[1]:
        return inputs
    return {name: value[:, :width] if name in TOKEN_COLUMNS else value
            for name, value in inputs.items()}
