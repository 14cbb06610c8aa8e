"""MultimodalSentimentClassifier: the scikit-learn face of the package."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.helper import predefined_split
from torch import nn

from .data import Collate, PostDataset, extract_columns, load_images
from .encoders import ImageEncoder, TextEncoder
from .fusion import FUSIONS
from .model import FINETUNE_MODES, MultimodalNet


class WarmupCosine:
    """Learning-rate multiplier: linear warm-up, then cosine decay to zero (per batch).

    >>> sched = WarmupCosine(total_steps=100, warmup_steps=10)
    >>> [round(sched(s), 2) for s in (0, 5, 10, 55, 100)]
    [0.09, 0.55, 1.0, 0.5, 0.0]
    """

    def __init__(self, total_steps: int, warmup_steps: int) -> None:
        self.total_steps = max(1, total_steps)
        self.warmup_steps = max(0, warmup_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def resolve_device(device: str) -> str:
    """Turn ``"auto"`` into ``"cuda"`` where a GPU is visible, else ``"cpu"``.

    >>> resolve_device("cpu")
    'cpu'
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but no CUDA GPU is available.")
    return device


class MultimodalSentimentClassifier(ClassifierMixin, BaseEstimator):
    """Text + image sentiment classifier: pretrained encoders fine-tuned jointly with a fusion head.

    A sentence-transformers text encoder and a timm image encoder each turn a post into a
    vector; a fusion head maps the pair onto class scores, and the whole network is trained
    end to end through skorch (Toledo & Marcacini, 2022). Encoders are loaded in :meth:`fit`,
    never in ``__init__``, so :func:`~sklearn.base.clone` and grid searches stay cheap.

    Parameters
    ----------
    text_encoder : str, default="all-MiniLM-L6-v2"
        A sentence-transformers model name or local folder. Installed weights (see
        :data:`mmsentiment.encoders.OFFLINE_TEXT_ENCODERS`) are used first.
    image_encoder : str, default="tf_efficientnet_lite0"
        A timm model name, optionally ``"name@/path/to/weights.pth"``.
    fusion : {"concat", "paper"}, default="concat"
        The fusion head (:mod:`mmsentiment.fusion`); ``"paper"`` is the published one.
    finetune : {"full", "top", "frozen"}, default="full"
        What trains besides the head: both whole encoders (joint fine-tuning), only their
        top layers, or nothing (the encoders' features are then computed once per fit).
    max_epochs : int, default=3
        Upper bound on training epochs.
    batch_size : int, default=32
        Posts per training and prediction batch.
    lr : float, default=1e-3
        Learning rate of the fusion head.
    text_encoder_lr : float, default=3e-5
        Learning rate of the text encoder's trainable layers.
    image_encoder_lr : float, default=1e-4
        Learning rate of the image encoder's trainable layers.
    weight_decay : float, default=0.01
        AdamW weight decay.
    warmup : float, default=0.1
        Fraction of all training steps with linear learning-rate warm-up; cosine decay follows.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn.
    validation_fraction : float or None, default=0.1
        Share of the training data held out (stratified) to pick the best epoch and stop
        early; ``None`` trains on everything for ``max_epochs``.
    patience : int, default=2
        Epochs without a better validation loss before training stops.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train and predict; ``"auto"`` takes a GPU when one is visible.
    random_state : int, RandomState or None, default=None
        Seed for the split, initialisation, shuffling, dropout and augmentation. With an
        integer, a CPU fit is repeatable.
    verbose : int, default=0
        ``0`` is silent; ``1`` prints one line per epoch.
    text_column : str, default="text"
        Column of X holding the texts (DataFrame input).
    image_column : str, default="image_path"
        Column of X holding image paths or PIL images (DataFrame input).

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    net_ : skorch.NeuralNetClassifier
        The trained network; ``net_.history`` holds the per-epoch losses and scores.
    n_features_in_ : int
        Number of columns of X seen in fit.
    feature_names_in_ : ndarray
        Column names of X, where X was a DataFrame.

    Examples
    --------
    >>> from mmsentiment import MultimodalSentimentClassifier, load_demo
    >>> X, y = load_demo(return_X_y=True)
    >>> clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=5, random_state=0)
    >>> clf.fit(X, y).predict(X[:2]).shape
    (2,)
    """

    def __init__(self, text_encoder: str = "all-MiniLM-L6-v2",
                 image_encoder: str = "tf_efficientnet_lite0", fusion: str = "concat",
                 finetune: str = "full", max_epochs: int = 3, batch_size: int = 32,
                 lr: float = 1e-3, text_encoder_lr: float = 3e-5,
                 image_encoder_lr: float = 1e-4, weight_decay: float = 0.01,
                 warmup: float = 0.1, class_weight=None,
                 validation_fraction: float | None = 0.1, patience: int = 2,
                 device: str = "auto", random_state=None, verbose: int = 0,
                 text_column: str = "text", image_column: str = "image_path") -> None:
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.fusion = fusion
        self.finetune = finetune
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.text_encoder_lr = text_encoder_lr
        self.image_encoder_lr = image_encoder_lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.text_column = text_column
        self.image_column = image_column

    # ------------------------------------------------------------------ sklearn plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = True
        tags.classifier_tags.poor_score = True
        tags.non_deterministic = self.random_state is None
        return tags

    def _check_params(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {sorted(FUSIONS)}, got {self.fusion!r}")
        if self.finetune not in FINETUNE_MODES:
            raise ValueError(f"finetune must be one of {FINETUNE_MODES}, got {self.finetune!r}")
        if not (isinstance(self.max_epochs, int) and self.max_epochs >= 1):
            raise ValueError(f"max_epochs must be a positive int, got {self.max_epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        vf = self.validation_fraction
        if vf is not None and not 0 < vf < 1:
            raise ValueError(f"validation_fraction must be in (0, 1) or None, got {vf!r}")

    def _validate_X(self, X, reset: bool) -> tuple[list[str], list]:
        # sklearn's own checks first (sparse, empty, complex input; column names and count
        # against fit), then ours: two columns holding texts and images.
        validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)
        return extract_columns(X, self.text_column, self.image_column)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y) -> MultimodalSentimentClassifier:
        """Fine-tune the encoders and the fusion head on posts ``X`` with labels ``y``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, 2)
            Texts and images (paths or PIL images).
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.

        Returns
        -------
        self
        """
        self._check_params()
        _, y = validate_data(self, X, y, dtype=None, ensure_all_finite=False)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"y holds only one class ({encoder.classes_[0]!r}); a classifier needs two."
            )
        texts, images = extract_columns(X, self.text_column, self.image_column)
        self.classes_ = encoder.classes_
        y_int = encoder.transform(y).astype(np.int64)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._build_module(len(self.classes_))
            pixels = load_images(images, module.image_encoder.preprocessing)
            dataset = PostDataset(y_int, texts=texts, pixels=pixels)
            if self.finetune == "frozen":
                dataset = self._featurize(module, dataset, device)
            train_idx, valid_idx = self._split(y_int, seed)
            self.net_ = self._build_net(module, dataset, train_idx, valid_idx, y_int, device)
            self.net_.fit(dataset.subset(train_idx), y=None)
        return self

    def _build_module(self, n_classes: int) -> MultimodalNet:
        text = TextEncoder(self.text_encoder)
        image = ImageEncoder(self.image_encoder)
        head = FUSIONS[self.fusion](text.dim, image.dim, n_classes)
        return MultimodalNet(text, image, head, finetune=self.finetune)

    def _featurize(self, module: MultimodalNet, dataset: PostDataset, device: str
                   ) -> PostDataset:
        """Encode every post once with the frozen encoders."""
        module.to(device).eval()
        collate = Collate(module.text_encoder.tokenizer, module.text_encoder.max_length)
        loader = torch.utils.data.DataLoader(dataset, batch_size=max(self.batch_size, 64),
                                             collate_fn=collate)
        text_parts, image_parts = [], []
        with torch.inference_mode():
            for X, _ in loader:
                X = {k: v.to(device) for k, v in X.items()}
                pixels = X.pop("pixels")
                text_parts.append(module.encode_text(**X).float().cpu())
                image_parts.append(module.encode_image(pixels).float().cpu())
        return PostDataset(dataset.y, text_features=torch.cat(text_parts),
                           image_features=torch.cat(image_parts))

    def _split(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        index = np.arange(len(y))
        if self.validation_fraction is None:
            return index, index[:0]
        n_classes = len(np.unique(y))
        n_valid = math.ceil(self.validation_fraction * len(y))
        if np.bincount(y).min() < 2 or n_valid < n_classes or len(y) - n_valid < n_classes:
            warnings.warn(
                f"Too few samples ({len(y)}) for a stratified validation split of "
                f"{self.validation_fraction}; training on all of them for max_epochs without "
                "early stopping.", UserWarning, stacklevel=3,
            )
            return index, index[:0]
        train_idx, valid_idx = train_test_split(index, test_size=n_valid, stratify=y,
                                                random_state=seed)
        return np.sort(train_idx), np.sort(valid_idx)

    def _build_net(self, module: MultimodalNet, dataset: PostDataset, train_idx, valid_idx,
                   y: np.ndarray, device: str) -> NeuralNetClassifier:
        steps = self.max_epochs * math.ceil(len(train_idx) / self.batch_size)
        callbacks = [("lr_schedule", LRScheduler(
            policy=torch.optim.lr_scheduler.LambdaLR, step_every="batch",
            lr_lambda=WarmupCosine(steps, int(self.warmup * steps))))]
        if len(valid_idx):
            train_split = predefined_split(dataset.subset(valid_idx))
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.patience, load_best=True)))
        else:
            train_split = None
        tokenizer, max_length = module.text_encoder.tokenizer, module.text_encoder.max_length
        return NeuralNetClassifier(
            module,
            criterion=nn.CrossEntropyLoss,
            criterion__weight=self._class_weights(y),
            classes=list(range(len(self.classes_))),
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            optimizer__param_groups=[
                ("text_encoder.*", {"lr": self.text_encoder_lr}),
                ("image_encoder.*", {"lr": self.image_encoder_lr}),
            ],
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__shuffle=True,
            iterator_train__collate_fn=Collate(tokenizer, max_length, flip=True),
            iterator_valid__collate_fn=Collate(tokenizer, max_length),
            train_split=train_split,
            callbacks=callbacks,
            device=device,
            verbose=self.verbose,
        )

    def _class_weights(self, y: np.ndarray) -> torch.Tensor | None:
        if self.class_weight is None:
            return None
        classes = np.arange(len(self.classes_))
        if self.class_weight == "balanced":
            weights = compute_class_weight("balanced", classes=classes, y=y)
        else:
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(f"class_weight names unknown classes {sorted(unknown)}.")
            weights = np.array([self.class_weight.get(c, 1.0) for c in self.classes_])
        return torch.as_tensor(weights, dtype=torch.float32)

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, one row per post, columns ordered as ``classes_``."""
        check_is_fitted(self, "net_")
        texts, images = self._validate_X(X, reset=False)
        module = self.net_.module_
        pixels = load_images(images, module.image_encoder.preprocessing)
        with torch.inference_mode():
            proba = self.net_.predict_proba(PostDataset(texts=texts, pixels=pixels))
        return np.asarray(proba, dtype=np.float64)

    def predict(self, X) -> np.ndarray:
        """The most probable class label of each post."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def history_(self):
        """Per-epoch training record (skorch ``History``): losses, accuracy, durations."""
        check_is_fitted(self, "net_")
        return self.net_.history
