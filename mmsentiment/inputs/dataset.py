"""Datasets and batching: posts as named columns, gathered a whole batch at a time.

A pipeline (`mmsentiment.inputs.pipelines`) turns texts and images into the columns of a
`PostDataset`; `batch_loader` draws batches of rows; `Collate` tokenizes each batch with
padding to its longest text, never to a fixed length, and applies the flip augmentation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..encoders.text import tokenize


class PostDataset(torch.utils.data.Dataset):
    """Posts for skorch: named columns of equal length, read a whole batch at a time.

    Each column becomes the model input of the same name: ``"text"`` (strings, tokenized by
    `Collate`), ``"pixels"`` (uint8 images), ``"image_lower"`` (cached lower-layer
    activations), ``"text_features"`` / ``"image_features"`` (cached pooled vectors),
    ``"text_present"`` / ``"image_present"`` (which rows have each modality) and
    ``"text_label"`` / ``"image_label"`` (auxiliary targets). Which columns exist is the
    choice of the pipeline that built the dataset (`mmsentiment.inputs.pipelines`).

    A subset is a view: it shares the columns of the dataset it came from and only holds
    its row numbers, so the split into training and validation rows copies no image.
    `batch` gathers a whole batch with one indexing operation per column.

    Parameters
    ----------
    columns : dict of str to Tensor or ndarray
        The columns; ``None`` values are dropped. Text columns are object arrays or lists.
    y : array-like of int, optional
        Labels; zeros where ``None`` (prediction).

    Examples
    --------
    >>> ds = PostDataset({"text": ["good", "bad"], "text_present": torch.ones(2, dtype=bool)},
    ...                  y=[1, 0])
    >>> inputs, y = ds.subset([1]).batch([0])
    >>> inputs["text"], y.tolist()
    (['bad'], [0])
    """

    def __init__(self, columns: dict, y=None) -> None:
        self.columns = {name: (np.asarray(value, dtype=object) if isinstance(value, list)
                               else value)
                        for name, value in columns.items() if value is not None}
        n = len(next(iter(self.columns.values())))
        self.columns["y"] = torch.zeros(n, dtype=torch.long) if y is None else torch.as_tensor(y)
        self.rows = torch.arange(n)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str):
        """The values of column ``name`` for this view's rows (a copy), or ``None``."""
        value = self.columns.get(name)
        if value is None:
            return None
        return value[self.rows.numpy()] if isinstance(value, np.ndarray) else value[self.rows]

    def subset(self, index) -> PostDataset:
        """A view of the rows in ``index`` (positions within this dataset)."""
        view = object.__new__(PostDataset)
        view.columns = self.columns
        view.rows = self.rows[torch.as_tensor(index, dtype=torch.long)]
        return view

    def with_columns(self, **columns) -> PostDataset:
        """A dataset over the same rows with columns replaced (``None`` drops one)."""
        kept = {name: self.column(name) for name in self.columns
                if name != "y" and name not in columns}  # no copy of what is replaced
        kept.update(columns)
        return PostDataset(kept, y=self.column("y"))

    def hide(self, *modalities: str) -> PostDataset:
        """A view of the same rows in which each of ``modalities`` is marked missing.

        Only the presence column of each hidden modality (``"text"`` or ``"image"``) is new;
        every other column is shared, so hiding the images of decoded posts copies no pixel.
        The network treats a hidden modality as a missing one (`mmsentiment.nn.MultimodalNet`).

        Examples
        --------
        >>> ds = PostDataset({"text": ["a", "b"], "text_present": torch.ones(2, dtype=bool),
        ...                   "image_present": torch.ones(2, dtype=bool)})
        >>> hidden = ds.hide("image")
        >>> hidden.column("image_present").tolist(), hidden.column("text_present").tolist()
        ([False, False], [True, True])
        """
        columns = dict(self.columns)
        for modality in modalities:
            name = f"{modality}_present"
            if name not in columns:
                raise ValueError(f"Cannot hide {modality!r}: the dataset has no {name!r} "
                                 "column (modalities are 'text' and 'image').")
            columns[name] = torch.zeros_like(columns[name])
        view = object.__new__(PostDataset)
        view.columns, view.rows = columns, self.rows
        return view

    def by_text_length(self) -> np.ndarray | None:
        """Positions of this dataset's rows from the shortest text to the longest, or
        ``None`` for a dataset without texts (cached features).

        Prediction runs the rows in this order, so that each batch pads its texts to a
        similar length: on MVSA posts, MiniLM's inference ran 1.25x faster
        (docs/performance.md).

        Examples
        --------
        >>> ds = PostDataset({"text": ["a long one", "", "mid"]})
        >>> ds.by_text_length().tolist()
        [1, 2, 0]
        """
        texts = self.column("text")
        if texts is None:
            return None
        return np.argsort(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)),
                          kind="stable")

    def batch(self, index) -> tuple[dict, torch.Tensor]:
        """The inputs and labels of the rows at positions ``index``, gathered at once."""
        rows = self.rows[torch.as_tensor(index, dtype=torch.long)]
        inputs = {name: (value[rows.numpy()].tolist() if isinstance(value, np.ndarray)
                         else value[rows])
                  for name, value in self.columns.items() if name != "y"}
        return inputs, self.columns["y"][rows]

    def __getitem__(self, i: int):
        inputs, y = self.batch([i])
        return {k: v[0] for k, v in inputs.items()}, y[0]


class _Gather:
    """The collate function of `batch_loader`: positions in, one gathered batch out."""

    def __init__(self, dataset: PostDataset, collate_fn=None) -> None:
        self.dataset, self.collate_fn = dataset, collate_fn

    def __call__(self, positions: list[int]):
        batch = self.dataset.batch(positions)
        return self.collate_fn(batch) if self.collate_fn is not None else batch


def batch_loader(dataset: PostDataset, batch_size: int, shuffle: bool = False,
                 collate_fn=None) -> DataLoader:
    """A skorch iterator over a `PostDataset` that gathers whole batches at once.

    It is a plain ``torch.utils.data.DataLoader`` over the row positions (``range(n)``):
    its sampler draws the positions of a batch, and its collate function gathers that
    whole batch from the dataset's columns with one index operation per column, so the hot
    loop does no per-post work beyond listing positions. Being a real ``DataLoader`` with
    a standard batch sampler, accelerate can shard it across processes.

    Parameters
    ----------
    dataset : PostDataset
        The posts.
    batch_size : int
        Posts per batch.
    shuffle : bool, default=False
        Draw a new order every epoch (seeded from torch's global generator).
    collate_fn : callable, optional
        Turns ``(inputs, y)`` of a batch into model input (`Collate`).

    Returns
    -------
    torch.utils.data.DataLoader

    Examples
    --------
    >>> ds = PostDataset({"pixels": torch.zeros(3, 3, 2, 2, dtype=torch.uint8)}, y=[0, 1, 0])
    >>> [len(y) for _, y in batch_loader(ds, 2)]
    [2, 1]
    """
    return DataLoader(range(len(dataset)), batch_size=batch_size, shuffle=shuffle,
                      collate_fn=_Gather(dataset, collate_fn))


class Collate:
    """Finish a gathered batch: tokenize with dynamic padding, optionally flip images.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
        The text encoder's tokenizer.
    max_length : int
        Truncation length of the text encoder.
    flip : bool, default=False
        Randomly flip images horizontally (training augmentation); for cached lower-layer
        activations, pick the stored activations of the mirror image instead.
    """

    def __init__(self, tokenizer, max_length: int, flip: bool = False) -> None:
        self.tokenizer, self.max_length, self.flip = tokenizer, max_length, flip

    def __call__(self, batch: tuple[dict, torch.Tensor]):
        inputs, y = batch
        inputs = dict(inputs)
        if "text" not in inputs:
            return inputs, y
        inputs.update(tokenize(self.tokenizer, self.max_length, inputs.pop("text")))
        if "image_lower" in inputs:
            # Precomputed lower-layer outputs of the image and of its mirror image.
            variant = (torch.rand(len(y)) < 0.5).long() if self.flip else \
                torch.zeros(len(y), dtype=torch.long)
            inputs["image_lower"] = inputs["image_lower"][torch.arange(len(y)), variant]
        elif self.flip:
            flip = torch.rand(len(y)) < 0.5
            inputs["pixels"][flip] = inputs["pixels"][flip].flip(-1)
        return inputs, y
