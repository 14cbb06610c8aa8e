"""MultimodalSentimentClassifier: the scikit-learn face of the package."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, LRScheduler
from skorch.exceptions import DeviceWarning
from skorch.helper import predefined_split
from torch import nn

from .cache import fingerprint, image_key, module_code, resolve_cache_dir
from .callbacks import EpochProgress, TrainingStatus
from .data import (
    IMAGE_POLICIES,
    Collate,
    PostDataset,
    batch_loader,
    extract_columns,
    handle_image_failures,
    is_missing,
    load_images,
)
from .encoders import ImageEncoder, TextEncoder
from .features import image_features, text_features
from .fusion import FUSIONS
from .model import FINETUNE_MODES, MultimodalNet, layer_decay_groups
from .net import PRECISIONS, SentimentNet, accelerated_net_class, release_free_memory


class _Warmup:
    """Learning-rate multiplier per batch: linear warm-up over ``warmup_steps``, then
    `decay` (defined by each schedule)."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = max(0, warmup_steps)
        # skorch restarts the scheduler at "epochs done" on a resumed fit; the offset turns
        # that into "batches done".
        self.offset = 0

    def __call__(self, step: int) -> float:
        step += self.offset
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        return self.decay(step)

    def decay(self, step: int) -> float:
        raise NotImplementedError


class WarmupCosine(_Warmup):
    """Linear warm-up, then cosine decay to zero at ``total_steps``.

    >>> sched = WarmupCosine(total_steps=100, warmup_steps=10)
    >>> [round(sched(s), 2) for s in (0, 5, 10, 55, 100)]
    [0.09, 0.55, 1.0, 0.5, 0.0]
    """

    def __init__(self, total_steps: int, warmup_steps: int) -> None:
        super().__init__(warmup_steps)
        self.total_steps = max(1, total_steps)

    def decay(self, step: int) -> float:
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupExponential(_Warmup):
    """Linear warm-up, then a fall by ``gamma`` after every epoch (PyTorch's
    ``ExponentialLR`` stepped per epoch, as in the paper).

    >>> sched = WarmupExponential(steps_per_epoch=10, warmup_steps=0, gamma=0.9)
    >>> [round(sched(s), 3) for s in (0, 9, 10, 25)]
    [1.0, 1.0, 0.9, 0.81]
    """

    def __init__(self, steps_per_epoch: int, warmup_steps: int, gamma: float = 0.9) -> None:
        super().__init__(warmup_steps)
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.gamma = gamma

    def decay(self, step: int) -> float:
        return self.gamma ** (step // self.steps_per_epoch)


LR_SCHEDULES = ("cosine", "exponential")


def _describe(value) -> str:
    """A parameter as text for the checkpoint fingerprint (a module by code and weights)."""
    if isinstance(value, nn.Module):
        return fingerprint(module_code(value), *value.state_dict().values())
    return str(value)


def _accelerate():
    try:
        import accelerate
    except ImportError as exc:
        raise ImportError('device="accelerate" needs the accelerate package: '
                          'pip install "mmsentiment[accelerate]"') from exc
    return accelerate


def _device_name(device: torch.device) -> str:
    # accelerate names the CPU of a multi-process run "cpu:0"; torch.load cannot map that.
    return "cpu" if device.type == "cpu" else str(device)


def resolve_device(device: str) -> str:
    """Turn ``"auto"`` into ``"cuda"`` where a GPU is visible, else ``"cpu"``.

    >>> resolve_device("cpu")
    'cpu'
    """
    if device == "accelerate":  # this process's device in an ``accelerate launch`` run
        return _device_name(_accelerate().PartialState(cpu=not torch.cuda.is_available()).device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but no CUDA GPU is available.")
    return device


class MultimodalSentimentClassifier(ClassifierMixin, BaseEstimator):
    """Text + image sentiment classifier: pretrained encoders fine-tuned jointly with a fusion head.

    A sentence-transformers text encoder and a timm image encoder each turn a post into a
    vector; a fusion head maps the pair onto class scores, and the whole network is trained
    end to end through skorch (Toledo & Marcacini, 2022). Encoders are loaded in `fit`,
    never in ``__init__``, so `sklearn.base.clone` and grid searches stay cheap.

    Parameters
    ----------
    text_encoder : str or SentenceTransformer, default="all-MiniLM-L6-v2"
        A sentence-transformers model name or local folder (installed weights, see
        `mmsentiment.encoders.OFFLINE_TEXT_ENCODERS`, are used first), or a
        ``SentenceTransformer`` object.
    image_encoder : str or torch.nn.Module, default="tf_efficientnet_lite0"
        A timm model name, optionally ``"name@/path/to/weights.pth"``, or any module from
        ``(N, 3, H, W)`` images to ``(N, D)`` vectors (a timm model object, or your own;
        see `mmsentiment.encoders.ImageEncoder`). Module objects are copied at fit, never
        changed; a model with module encoders is saved with joblib, not `save`.
    fusion : {"concat", "paper", "attention"}, default="concat"
        The fusion head (`mmsentiment.fusion`): ``"concat"`` joins the two pooled vectors;
        ``"paper"`` is the published head; ``"attention"`` attends across the text's
        tokens and the image's patches (`mmsentiment.fusion.AttentionFusion`; needs
        ``finetune="full"`` or ``"top"``, since frozen fits cache pooled vectors only).
    finetune : {"full", "top", "frozen"}, default="full"
        What trains besides the head: both whole encoders (joint fine-tuning); only their
        top layers (the top 4 transformer layers, the last image block stage and the head
        convolution; the image encoder's frozen lower part then runs once per fit); or
        nothing (the encoders' outputs are then computed once and cached, see ``cache_dir``).
    max_epochs : int, default=3
        Upper bound on training epochs.
    batch_size : int, default=32
        Posts per training and prediction batch.
    micro_batch_size : int, None or "auto", default="auto"
        Run each training batch forward and backward in chunks of this many posts,
        accumulating gradients, with one optimizer step per batch: the gradient of the whole
        batch from the memory of one chunk's activations (validation passes use the same
        chunks). With micro-batches, the image encoder's batch-norm layers normalise with
        their pretrained running statistics (their scale and shift still train), so the
        chunk size changes the update only through dropout's random masks. ``"auto"`` is 4
        for ``finetune="full"``, where activations dominate memory (a default fit on the
        3,611 MVSA train posts peaked at 2.7 GB instead of 7.0, docs/benchmarks.md), and
        ``None`` for ``"top"`` and ``"frozen"``, whose trained parts hold small
        activations. On a GPU with memory to spare, ``micro_batch_size=batch_size`` trains
        the same way faster. ``None`` runs whole batches with batch-norm statistics computed
        per batch, as the original method.
    lr : float, default=1e-3
        Learning rate of the fusion head.
    text_encoder_lr : float, default=1e-4
        Learning rate of the text encoder's trainable layers. It was 3e-5 until the lever
        screen of docs/benchmarks.md; on MVSA-Single 1e-4 scored higher on every seed at
        the same cost.
    image_encoder_lr : float, default=1e-4
        Learning rate of the image encoder's trainable layers.
    weight_decay : float, default=0.01
        AdamW weight decay.
    layer_decay : float, default=1.0
        Layer-wise learning-rate decay: each encoder's top layer learns at its rate
        (``text_encoder_lr``, ``image_encoder_lr``) and each layer below at ``layer_decay``
        times the one above it (`mmsentiment.model.layer_decay_groups`); ``1.0`` gives
        every layer of an encoder the same rate.
    warmup : float, default=0.1
        Fraction of all training steps with linear learning-rate warm-up.
    lr_schedule : {"cosine", "exponential"}, default="cosine"
        After the warm-up: cosine decay to zero at ``max_epochs``, or a fall by a factor
        of 0.9 after every epoch (the paper's ``ExponentialLR(gamma=0.9)``).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss (``torch.nn.CrossEntropyLoss``), in
        [0, 1).
    auxiliary_weight : float, default=0.5
        Weight in the loss of each auxiliary target, used only when `fit` is given
        per-modality labels (``text_labels``, ``image_labels``): one linear head per
        encoder then learns to predict its modality's own label from that encoder's
        vector, and its cross-entropy, times this weight, joins the training loss. The
        auxiliary heads are dropped after fit; prediction never uses them.
    validation_fraction : float or None, default=0.1
        Share of the training data held out (stratified) to pick the best epoch and stop
        early; ``None`` trains on everything for ``max_epochs``.
    patience : int, default=2
        Epochs without a better validation loss before training stops.
    modality_dropout : float, default=0.1
        In training, the share of complete posts whose text is hidden and, separately, the
        share whose image is hidden (at most 0.5), so that posts missing a modality at
        prediction time are handled by a model that has seen such posts.
    on_bad_image : {"raise", "blank"}, default="raise"
        What to do with an image that cannot be read (missing, empty, corrupt or not an
        image file, or a decompression bomb): raise a ``ValueError`` naming every such row,
        or warn with the count and the first paths and treat those images as missing.
    cache_dir : "auto", str, Path or None, default="auto"
        On-disk cache of frozen-encoder outputs (`mmsentiment.cache`), keyed by the
        encoder's weights and preprocessing and by each input's content. ``"auto"`` is the
        per-user folder (``$MMSENTIMENT_CACHE`` or ``~/.cache/mmsentiment``); ``None`` turns
        it off. It makes repeated frozen fits, folds and grid-search candidates encode each
        post once.
    checkpoint_dir : str, Path or None, default=None
        Where to save a checkpoint after every epoch. A later ``fit`` with the same
        parameters and data resumes from it instead of starting over.
    device : {"auto", "cpu", "cuda", "accelerate"}, default="auto"
        Where to train and predict; ``"auto"`` takes a GPU when one is visible.
        ``"accelerate"`` hands device placement and data parallelism to Hugging Face
        accelerate: run the script with ``accelerate launch --num_processes N`` and each
        process trains on every N-th batch (``batch_size`` is per process), gradients
        averaged across processes (`mmsentiment.net.accelerated_net_class`; needs
        ``pip install "mmsentiment[accelerate]"``; see docs/scaling.md).
    precision : {"32", "bf16", "fp16"}, default="32"
        Arithmetic of the forward pass in training and prediction: float32, or mixed
        precision through ``torch.autocast`` with bfloat16 or float16 (float16 with gradient
        scaling). Mixed precision pays off on GPUs with tensor cores; on a CPU without
        bfloat16 instructions it is slower than ``"32"``. The weights stay float32.
    random_state : int, RandomState or None, default=None
        Seed for the split, initialisation, shuffling, dropout and augmentation. With an
        integer, a CPU fit is repeatable; a GPU fit is not bit for bit (GPU kernels do not
        fix the order of floating-point sums; see docs/scaling.md).
    verbose : int, default=0
        ``0`` is silent; ``1`` shows tqdm progress bars while encoding and for each epoch
        (with its training loss, validation loss and validation accuracy); ``2`` also prints
        skorch's table of epochs.
    text_column : str, default="text"
        Column of X holding the texts (DataFrame input).
    image_column : str, default="image_path"
        Column of X holding image paths or PIL images (DataFrame input).

    Notes
    -----
    Missing values are first-class: a text that is None, NaN, empty or whitespace, and an
    image that is None, NaN or ``""`` mark that modality as absent for the post.

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    interrupted_ : bool
        Whether the last fit was stopped by Ctrl-C (KeyboardInterrupt); the estimator then
        holds the best weights seen so far and stays usable.
    net_ : skorch.NeuralNetClassifier (a subclass with float16 loss scaling)
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

    def __init__(self, text_encoder: str | nn.Module = "all-MiniLM-L6-v2",
                 image_encoder: str | nn.Module = "tf_efficientnet_lite0", fusion: str = "concat",
                 finetune: str = "full", max_epochs: int = 3, batch_size: int = 32,
                 micro_batch_size: int | str | None = "auto",
                 lr: float = 1e-3, text_encoder_lr: float = 1e-4,
                 image_encoder_lr: float = 1e-4, weight_decay: float = 0.01,
                 layer_decay: float = 1.0, warmup: float = 0.1, lr_schedule: str = "cosine",
                 class_weight=None, label_smoothing: float = 0.0,
                 auxiliary_weight: float = 0.5,
                 validation_fraction: float | None = 0.1, patience: int = 2,
                 modality_dropout: float = 0.1, on_bad_image: str = "raise",
                 cache_dir="auto", checkpoint_dir=None, device: str = "auto",
                 precision: str = "32", random_state=None,
                 verbose: int = 0, text_column: str = "text",
                 image_column: str = "image_path") -> None:
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.fusion = fusion
        self.finetune = finetune
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.micro_batch_size = micro_batch_size
        self.lr = lr
        self.text_encoder_lr = text_encoder_lr
        self.image_encoder_lr = image_encoder_lr
        self.weight_decay = weight_decay
        self.layer_decay = layer_decay
        self.warmup = warmup
        self.lr_schedule = lr_schedule
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.auxiliary_weight = auxiliary_weight
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.modality_dropout = modality_dropout
        self.on_bad_image = on_bad_image
        self.cache_dir = cache_dir
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.precision = precision
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
        if getattr(FUSIONS[self.fusion], "sequences", False) and self.finetune == "frozen":
            raise ValueError(f'fusion={self.fusion!r} attends over token and patch sequences; '
                             'finetune="frozen" caches pooled vectors only. Use finetune='
                             '"top" (the cheapest) or "full".')
        if not (isinstance(self.max_epochs, int) and self.max_epochs >= 1):
            raise ValueError(f"max_epochs must be a positive int, got {self.max_epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        mbs = self.micro_batch_size
        if mbs not in (None, "auto") and not (isinstance(mbs, int) and mbs >= 1):
            raise ValueError(
                f"micro_batch_size must be a positive int, None or 'auto', got {mbs!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        vf = self.validation_fraction
        if vf is not None and not 0 < vf < 1:
            raise ValueError(f"validation_fraction must be in (0, 1) or None, got {vf!r}")
        if not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not self.auxiliary_weight >= 0:
            raise ValueError(
                f"auxiliary_weight must be >= 0, got {self.auxiliary_weight!r}")
        if not 0 <= self.modality_dropout <= 0.5:
            raise ValueError(
                f"modality_dropout must be in [0, 0.5], got {self.modality_dropout!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.on_bad_image not in IMAGE_POLICIES:
            raise ValueError(
                f"on_bad_image must be one of {IMAGE_POLICIES}, got {self.on_bad_image!r}")
        for param in ("text_encoder", "image_encoder"):
            value = getattr(self, param)
            if not isinstance(value, (str, os.PathLike, nn.Module)):
                raise TypeError(f"{param} must be a model name, a path or a torch.nn.Module, "
                                f"got {type(value).__name__}")

    def _validate_X(self, X, reset: bool) -> tuple[list[str], list]:
        # sklearn's own checks first (sparse, empty, complex input; column names and count
        # against fit), then ours: two columns holding texts and images.
        validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)
        return extract_columns(X, self.text_column, self.image_column)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, text_labels=None, image_labels=None) -> MultimodalSentimentClassifier:
        """Fine-tune the encoders and the fusion head on posts ``X`` with labels ``y``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, 2)
            Texts and images (paths or PIL images).
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.
        text_labels, image_labels : array-like of shape (n_samples,), optional
            Each post's label for its text alone and for its image alone (e.g. the
            ``text_label`` and ``image_label`` columns of `load_mvsa`), from the classes
            of ``y``; None or NaN where unknown. Given, they train auxiliary heads
            (``auxiliary_weight``) that push each encoder towards its own modality's
            sentiment. They are fit parameters, so ``GridSearchCV(...).fit(X, y,
            text_labels=...)`` and ``cross_validate(..., params=...)`` split them
            with the posts. Ignored, with a warning, by ``finetune="frozen"``.

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
        aux = self._auxiliary_labels(text_labels, image_labels, len(y_int))
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        accelerator = self._accelerator()
        device = _device_name(accelerator.device) if accelerator else resolve_device(self.device)
        if accelerator is not None:
            # Every process must split, initialise and shuffle alike: the main process's
            # seed (random_state=None draws a different one in each process).
            from accelerate.utils import broadcast_object_list

            seed = broadcast_object_list([seed])[0]

        cuda = [torch.cuda.current_device()] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            module = self._build_module(len(self.classes_), auxiliary=aux is not None)
            if self.finetune == "frozen":
                dataset = self._frozen_features(module, texts, images, y_int, device)
            else:
                dataset = self._dataset(texts, images, module, y_int, aux)
            if module.caches_image_lower:
                dataset = self._lower_activations(module, dataset, device)
            train_idx, valid_idx = self._split(y_int, seed)
            valid = dataset.subset(valid_idx) if len(valid_idx) else None
            if accelerator is not None:  # own dropout and flip masks in each process
                torch.manual_seed(seed + accelerator.process_index)
            status = TrainingStatus()
            self.net_ = self._build_net(module, valid, len(train_idx), y_int, device, status,
                                        accelerator)
            train = dataset.subset(train_idx)
            resumed = self._resume(texts, images, y, aux)
            if resumed:
                self.net_.partial_fit(train, y=None, epochs=resumed)
            else:
                self.net_.fit(train, y=None)
        self.interrupted_ = status.interrupted
        if accelerator is not None:
            # A plain net around the unwrapped module: it pickles, and predicts on all rows.
            history = self.net_.history
            self.net_ = self._build_net(accelerator.unwrap_model(self.net_.module_), None, 1,
                                        y_int, device).initialize()
            self.net_.history = history
        # The validation split is a view of every decoded image: keep none in the model.
        self.net_.train_split = None
        self.net_.module_.drop_auxiliary_heads()
        early = dict(self.net_.callbacks_).get("early_stopping")
        if early is not None:
            early.best_model_weights_ = None  # restored already; keep pickles small
        if self.checkpoint_dir is not None and not status.interrupted:
            stamp = Path(self.checkpoint_dir) / "fit.json"
            stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "finished": True}))
        if status.interrupted:
            warnings.warn(
                f"Training was interrupted (KeyboardInterrupt) during epoch "
                f"{len(self.net_.history)}; the estimator keeps the weights of the best epoch "
                "so far and can predict. Set checkpoint_dir= to resume a fit later.",
                UserWarning, stacklevel=2,
            )
        return self

    def _dataset(self, texts: list, images: list, module: MultimodalNet, y=None,
                 aux: tuple[torch.Tensor, torch.Tensor] | None = None) -> PostDataset:
        pixels, present, failures = load_images(images, module.image_encoder.preprocessing,
                                                progress=self.verbose > 0)
        release_free_memory()  # the decoder threads' scratch memory
        handle_image_failures(failures, self.on_bad_image)
        text_label, image_label = aux if aux is not None else (None, None)
        return PostDataset(y, texts=texts, pixels=pixels, image_present=present,
                           text_label=text_label, image_label=image_label)

    def _auxiliary_labels(self, text_labels, image_labels, n: int
                          ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-modality labels as class indices (-1 where unknown), or None when unused."""
        if text_labels is None and image_labels is None:
            return None
        if self.finetune == "frozen":
            warnings.warn('text_labels / image_labels are ignored with finetune="frozen": '
                          "auxiliary targets train the encoders, which stay frozen.",
                          UserWarning, stacklevel=3)
            return None
        if self.auxiliary_weight == 0:
            return None
        index = {label: i for i, label in enumerate(self.classes_.tolist())}
        out = []
        for name, labels in (("text_labels", text_labels), ("image_labels", image_labels)):
            if labels is None:
                out.append(torch.full((n,), -1, dtype=torch.long))
                continue
            values = list(np.asarray(labels, dtype=object).ravel())
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries; X has {n} rows.")
            unknown = sorted({repr(v) for v in values if not is_missing(v) and v not in index})
            if unknown:
                raise ValueError(f"{name} holds labels that are not classes of y: "
                                 f"{', '.join(unknown[:5])}; classes: {self.classes_.tolist()}.")
            out.append(torch.tensor([-1 if is_missing(v) else index[v] for v in values],
                                    dtype=torch.long))
        return out[0], out[1]

    def _fingerprint(self, texts: list, images: list, y, aux=None) -> str:
        digest = hashlib.sha256()
        params = {k: v for k, v in self.get_params().items() if k not in ("verbose", "device")}
        digest.update(json.dumps(params, sort_keys=True, default=_describe).encode())
        for text, image, label in zip(texts, images, y):
            content = image_key(image) if image is not None else None
            digest.update(repr((text, content, label)).encode())
        if aux is not None:
            for labels in aux:
                digest.update(labels.numpy().tobytes())
        return digest.hexdigest()

    def _resume(self, texts: list, images: list, y, aux=None) -> int:
        """Load the checkpoint of an unfinished identical fit; return the epochs left (0: none).

        Writes ``fit.json`` (a fingerprint of the parameters and the data) into
        ``checkpoint_dir``; a finished fit marks it, so that only unfinished ones resume.
        """
        if self.checkpoint_dir is None:
            return 0
        folder = Path(self.checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = folder / "fit.json"
        fingerprint = self._fingerprint(texts, images, y, aux)
        done = 0
        if stamp.is_file() and (folder / "params.pt").is_file():
            previous = json.loads(stamp.read_text())
            if previous.get("fingerprint") == fingerprint and not previous.get("finished"):
                self.net_.initialize()
                callbacks = dict(self.net_.callbacks_)
                self.net_.load_params(checkpoint=callbacks["checkpoint"])
                done = len(self.net_.history)
                batches = int(sum(self.net_.history[:, "train_batch_count"]))
                callbacks["lr_schedule"].kwargs["lr_lambda"].offset = batches - done
        stamp.write_text(json.dumps({"fingerprint": fingerprint}))
        if done and self.verbose:
            print(f"Resuming from {folder}: {done} of {self.max_epochs} epochs done.")
        return max(0, self.max_epochs - done) if done else 0

    def _build_module(self, n_classes: int, auxiliary: bool = False) -> MultimodalNet:
        name = lambda v: v if isinstance(v, nn.Module) else os.fspath(v)  # noqa: E731
        text = TextEncoder(name(self.text_encoder))
        image = ImageEncoder(name(self.image_encoder))
        head_class = FUSIONS[self.fusion]
        text_dim = text.token_dim if getattr(head_class, "sequences", False) else text.dim
        head = head_class(text_dim, image.dim, n_classes)
        return MultimodalNet(text, image, head, finetune=self.finetune,
                             modality_dropout=self.modality_dropout, precision=self.precision,
                             frozen_batchnorm=self._micro_batch_size() is not None,
                             aux_classes=n_classes if auxiliary else 0)

    def _frozen_features(self, module: MultimodalNet, texts: list, images: list, y,
                         device: str) -> PostDataset:
        """Encoder outputs for every post, each unique input encoded at most once
        (`mmsentiment.features`)."""
        root = resolve_cache_dir(self.cache_dir)
        module.to(device).eval()
        text_enc, image_enc = module.text_encoder, module.image_encoder
        # Frozen weights never change, so each module fingerprints its encoders only once.
        if getattr(module, "cache_keys", None) is None and root is not None:
            module.cache_keys = (text_enc.cache_key(), image_enc.cache_key())
        keys = module.cache_keys or (None, None)
        progress = self.verbose > 0
        # Encoded in batches of batch_size, like fine-tuned models' predictions.
        text_vecs, text_present = text_features(text_enc, texts, root, keys[0], device,
                                                progress=progress, batch_size=self.batch_size)
        image_vecs, image_present = image_features(image_enc, images, root, keys[1], device,
                                                   self.on_bad_image, progress=progress,
                                                   batch_size=self.batch_size)
        return PostDataset(y, text_features=text_vecs, image_features=image_vecs,
                           text_present=text_present, image_present=image_present)

    def _lower_activations(self, module: MultimodalNet, dataset: PostDataset, device: str
                           ) -> PostDataset:
        """Run the image encoder's frozen lower part once per fit, on each image and its
        mirror image (the flip augmentation), and keep the outputs in float16."""
        from .model import TOP_IMAGE_BLOCKS

        encoder = module.image_encoder.to(device).eval()
        lower = None  # filled in place: no second copy from concatenating parts
        with torch.inference_mode():
            for start in range(0, len(dataset), 64):
                inputs, _ = dataset.batch(torch.arange(start, min(start + 64, len(dataset))))
                pixels = inputs["pixels"].to(device)
                both = torch.stack([encoder.lower(pixels, TOP_IMAGE_BLOCKS),
                                    encoder.lower(pixels.flip(-1), TOP_IMAGE_BLOCKS)], dim=1)
                if lower is None:
                    lower = torch.empty((len(dataset), *both.shape[1:]), dtype=torch.float16)
                lower[start:start + len(both)] = both.half().cpu()
        texts = [t if present else None for t, present in zip(dataset.texts,
                                                              dataset.text_present)]
        return PostDataset(dataset.y, texts=texts, image_present=dataset.image_present,
                           image_lower=lower, text_label=dataset.text_label,
                           image_label=dataset.image_label)

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

    def _build_net(self, module: MultimodalNet, valid: PostDataset | None, n_train: int,
                   y: np.ndarray | None, device: str, status: Callback | None = None,
                   accelerator=None) -> SentimentNet:
        batches = math.ceil(n_train / self.batch_size)
        if accelerator is not None:  # each process takes every N-th batch
            batches = math.ceil(batches / accelerator.num_processes)
        steps = self.max_epochs * batches
        warmup = int(self.warmup * steps)
        multiplier = (WarmupCosine(steps, warmup) if self.lr_schedule == "cosine"
                      else WarmupExponential(batches, warmup))
        callbacks = [("lr_schedule", LRScheduler(
            policy=torch.optim.lr_scheduler.LambdaLR, step_every="batch",
            lr_lambda=multiplier))]
        # Order matters: EarlyStopping ends training by raising in on_epoch_end, so the
        # status and checkpoint callbacks must see the epoch's end before it does.
        if status is not None:
            callbacks.append(("status", status))
        if self.verbose > 0 and (accelerator is None or accelerator.is_main_process):
            shards = accelerator.num_processes if accelerator is not None else 1
            callbacks.append(("progress", EpochProgress(self.max_epochs, shards)))
        if self.checkpoint_dir is not None:
            callbacks.append(("checkpoint", Checkpoint(
                monitor=None, dirname=str(self.checkpoint_dir), f_params="params.pt",
                f_optimizer="optimizer.pt", f_criterion="criterion.pt",
                f_history="history.json", load_best=False)))
        if valid is not None:
            train_split = predefined_split(valid)
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.patience, load_best=True)))
        else:
            train_split = None
        tokenizer, max_length = module.text_encoder.tokenizer, module.text_encoder.max_length
        net_class, placement = SentimentNet, {"device": device}
        if accelerator is not None:
            net_class = accelerated_net_class()
            placement = {"accelerator": accelerator, "device": None,
                         "unwrap_after_train": False}  # fit unwraps after early stopping
        return net_class(
            module,
            scale_loss=self.precision == "fp16",
            micro_batch_size=self._micro_batch_size(),
            auxiliary_weight=self.auxiliary_weight,
            criterion=nn.CrossEntropyLoss,
            criterion__weight=self._class_weights(y),
            criterion__label_smoothing=self.label_smoothing,
            classes=list(range(len(self.classes_))),
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            optimizer__param_groups=layer_decay_groups(
                module, self.text_encoder_lr, self.image_encoder_lr, self.layer_decay),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=batch_loader,
            iterator_train__shuffle=True,
            iterator_train__collate_fn=Collate(tokenizer, max_length, flip=True),
            iterator_valid=batch_loader,
            iterator_valid__collate_fn=Collate(tokenizer, max_length),
            train_split=train_split,
            callbacks=callbacks,
            verbose=int(self.verbose > 1),  # skorch's per-epoch table
            **placement,
        )

    def _micro_batch_size(self) -> int | None:
        if self.micro_batch_size == "auto":
            return 4 if self.finetune == "full" else None
        return self.micro_batch_size

    def _accelerator(self):
        """A fresh ``accelerate.Accelerator`` for ``device="accelerate"``, else ``None``."""
        if self.device != "accelerate":
            return None
        accelerate = _accelerate()
        if self.checkpoint_dir is not None:
            raise ValueError('checkpoint_dir is not supported with device="accelerate" (the '
                             "processes would each write and resume the same checkpoint).")
        # Mixed precision stays ours (precision=), and so does gradient accumulation
        # (micro_batch_size=); unused parameters are normal here (a batch without any image
        # skips the image encoder).
        ddp = accelerate.DistributedDataParallelKwargs(find_unused_parameters=True)
        # Without a GPU, processes started by torchrun or accelerate launch train on the CPU
        # (gloo); accelerate would otherwise not distribute there.
        accelerator = accelerate.Accelerator(
            mixed_precision="no", kwargs_handlers=[ddp], cpu=not torch.cuda.is_available(),
            gradient_accumulation_plugin=accelerate.utils.GradientAccumulationPlugin(
                num_steps=1))
        kind = accelerator.distributed_type.name
        if kind not in ("NO", "MULTI_GPU", "MULTI_CPU"):
            raise ValueError(f'device="accelerate" supports data parallelism (one process '
                             f"per device), not {kind}; launch without DeepSpeed/FSDP.")
        return accelerator

    def _class_weights(self, y: np.ndarray | None) -> torch.Tensor | None:
        if self.class_weight is None or y is None:
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
        if self.finetune == "frozen":
            dataset = self._frozen_features(module, texts, images, None, self.net_.device)
        else:
            dataset = self._dataset(texts, images, module)
        with torch.inference_mode():
            proba = self.net_.predict_proba(dataset)
        return np.asarray(proba, dtype=np.float64)

    def predict(self, X) -> np.ndarray:
        """The most probable class label of each post."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # ------------------------------------------------------------------ persistence
    def __getstate__(self) -> dict:
        # The fitted net, and encoder parameters given as module objects, go through
        # torch.save, so that every tensor in them (module, optimizer, callbacks) can be
        # mapped onto the CPU when a GPU-trained model is unpickled on a machine without one.
        state = self.__dict__.copy()
        if "net_" in state:
            buffer = io.BytesIO()
            state["_net_device"] = str(state["net_"].device)
            torch.save(state.pop("net_"), buffer)
            state["_net_bytes"] = buffer.getvalue()
        modules = {k: state.pop(k) for k in ("text_encoder", "image_encoder")
                   if isinstance(state.get(k), nn.Module)}
        if modules:
            buffer = io.BytesIO()
            torch.save(modules, buffer)
            state["_module_bytes"] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict) -> None:
        net_bytes = state.pop("_net_bytes", None)
        module_bytes = state.pop("_module_bytes", None)
        trained_on = state.pop("_net_device", "")
        self.__dict__.update(state)
        gpu = torch.cuda.is_available()
        if module_bytes is not None:
            self.__dict__.update(torch.load(io.BytesIO(module_bytes), weights_only=False,
                                            map_location=None if gpu else "cpu"))
        if net_bytes is not None:
            moved = not gpu and trained_on.startswith("cuda")
            with warnings.catch_warnings():
                if moved:  # skorch's two DeviceWarnings say less than the one below
                    warnings.simplefilter("ignore", DeviceWarning)
                self.net_ = torch.load(io.BytesIO(net_bytes), weights_only=False,
                                       map_location=None if gpu else "cpu")
            if moved:
                warnings.warn("This model was trained on a GPU; no GPU is visible, so it "
                              "predicts on the CPU.", UserWarning, stacklevel=2)

    def save(self, path, self_contained: bool = False) -> Path:
        """Save the fitted model as one safetensors file (weights + JSON config).

        Loading such a file runs no code, unlike a pickle. Encoders that were not fine-tuned
        are stored by name and reloaded from their pretrained weights, which keeps files small;
        ``self_contained=True`` stores a copy of them too.

        Parameters
        ----------
        path : str or Path
            Where to write, conventionally ending in ``.safetensors``.
        self_contained : bool, default=False
            Store frozen encoders' weights as well.

        Returns
        -------
        Path
            The file written.
        """
        from .persistence import save_model

        return save_model(self, path, self_contained=self_contained)

    @classmethod
    def load(cls, path, device: str | None = None) -> MultimodalSentimentClassifier:
        """Load a model written by `save`.

        A model saved on a GPU loads on a CPU-only machine. A file of an incompatible format
        version raises a ``ValueError`` that says which version wrote it.

        Parameters
        ----------
        path : str or Path
            The file.
        device : str, optional
            Overrides the saved ``device`` parameter (e.g. ``"cpu"``).
        """
        from .persistence import load_model

        return load_model(path, device=device)

    @property
    def history_(self):
        """Per-epoch training record (skorch ``History``): losses, accuracy, durations."""
        check_is_fitted(self, "net_")
        return self.net_.history
