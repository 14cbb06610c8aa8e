"""MultimodalSentimentClassifier: parameters, their checks, and fit/predict orchestration over
`mmsentiment.inputs` (columns, pipelines), `mmsentiment.nn` and `mmsentiment.training`."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from .encoders.onnx import onnx_inference, use_onnxruntime
from .explain import ExplainMixin
from .inputs import (
    check_sample_weight,
    extract_columns,
    make_pipeline,
    predict_chunks,
    training_columns,
)
from .memory import large_blocks_reused
from .nn import MultimodalNet, build_network, get_finetune
from .params import check_params, check_warm_start
from .persistence import PersistenceMixin
from .pretrained import PretrainedMixin
from .priors import class_prior, continued_prior, logit_offsets
from .training import (
    TrainingStatus,
    build_net,
    class_weights,
    collapse_message,
    device_name,
    fit_fingerprint,
    make_accelerator,
    mark_finished,
    named_callbacks,
    resolve_device,
    resolve_precision,
    resume,
    shared_seed,
    validation_split,
)


class MultimodalSentimentClassifier(ExplainMixin, PersistenceMixin, PretrainedMixin,
                                    ClassifierMixin, BaseEstimator):
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
        ``(N, 3, H, W)`` images to ``(N, D)`` vectors (`mmsentiment.encoders.ImageEncoder`;
        copied at fit; such models are saved with joblib, not `save`).
    fusion : {"concat", "paper", "attention"}, default="concat"
        The fusion head (`mmsentiment.nn.fusion`): ``"concat"`` joins the pooled vectors;
        ``"paper"`` is the published head; ``"attention"`` attends across tokens and image
        patches (needs ``finetune="full"`` or ``"top"``).
    finetune : {"full", "top-image", "top", "frozen"}, default="full"
        What trains besides the head (`mmsentiment.nn.Finetune`): both whole encoders
        (joint fine-tuning); the whole text encoder and the image model's top layer group,
        whose frozen part below runs once per fit; the top layer groups of both (4
        transformer layers, the image model's top group); or nothing (encoder outputs are
        computed once and cached, see ``cache_dir``).
    max_epochs : int, default=3
        Upper bound on training epochs.
    batch_size : int, default=32
        Posts per training and prediction batch.
    micro_batch_size : int, None or "auto", default="auto"
        Posts per forward/backward chunk of a training batch: gradients accumulate and the
        optimizer steps once per batch, so memory holds one chunk's activations, and
        batch-norm statistics stay frozen. ``"auto"`` is 4 for ``finetune="full"`` and
        ``None`` otherwise; ``None`` runs whole batches with batch-norm statistics per
        batch, as the original method (docs/performance.md).
    gradient_checkpointing : bool, default=False
        Whether the text encoder's layers recompute their activations in the backward pass
        instead of keeping them (Hugging Face's activation checkpointing; the same
        predictions): less memory for more time, meant for the text encoder training in
        whole batches (``finetune="top-image"``, docs/performance.md). Text models without
        it train as they are.
    image_size : int or None, default=None
        Side in pixels of the square images the image encoder sees, in fit and prediction
        alike (resized and centre-cropped with the model's crop share; 32 to 1024);
        ``None``: the encoder's pretrained size (224 for EfficientNet-Lite0, 260 for
        Lite2). A convolutional encoder's cost falls with the pixel count: smaller images
        train and predict faster, at some accuracy (docs/performance.md).
    lr : float, default=1e-3
        Learning rate of the fusion head.
    text_encoder_lr : float, default=1e-4
        Learning rate of the text encoder's trainable layers (its top layer under
        ``layer_decay``).
    image_encoder_lr : float, default=1e-4
        Learning rate of the image encoder's trainable layers.
    weight_decay : float, default=0.01
        AdamW weight decay.
    layer_decay : float, default=1.0
        Each encoder layer group below the top learns at ``layer_decay`` times the rate of
        the group above it (`mmsentiment.nn.layer_decay_groups`); ``1.0``: one rate.
    warmup : float, default=0.1
        Fraction of all training steps with linear learning-rate warm-up.
    lr_schedule : {"cosine", "exponential"}, default="cosine"
        After the warm-up: cosine decay to zero at ``max_epochs``, or a fall by a factor
        of 0.9 after every epoch (the paper's ``ExponentialLR(gamma=0.9)``).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn.
    logit_adjustment : float, default=0.5
        Prediction subtracts ``logit_adjustment * log(class_prior_)`` from the head's
        logits (post-hoc logit adjustment, Menon et al., ICLR 2021): rare classes are
        predicted more often. ``0`` keeps the network's own probabilities; ``1`` aims at
        the best balanced accuracy. A ``class_weight="balanced"`` fit has a uniform prior,
        so nothing changes; other weights are tempered (``0`` lets them act in full).
        Applied at prediction: ``set_params`` needs no refit. On
        MVSA-Single 0.5 kept dev accuracy within noise and raised macro F1
        (docs/guide/accuracy.md).
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss (``torch.nn.CrossEntropyLoss``), in
        [0, 1).
    auxiliary_weight : float, default=0.5
        Weight in the loss of each auxiliary head's cross-entropy, when `fit` is given
        per-modality labels (``text_labels``, ``image_labels``); the heads are dropped
        after fit.
    validation_fraction : float or None, default=0.1
        Share of the training data held out (stratified) to pick the best epoch and stop
        early; ``None`` trains on everything for ``max_epochs``.
    patience : int, default=2
        Epochs without a better validation loss before training stops.
    modality_dropout : float, default=0.1
        In training, the share of complete posts whose text is hidden, and the share whose
        image is hidden (at most 0.5), so that the model learns to predict from either.
    on_bad_image : {"raise", "blank"}, default="raise"
        An image that cannot be read (missing, corrupt, not an image, a decompression
        bomb): raise a ``ValueError`` naming every such row, or warn and treat it as missing.
    cache_dir : "auto", str, Path or None, default="auto"
        On-disk cache of frozen-encoder outputs (`mmsentiment.inputs.cache`), keyed by the
        encoder's weights and by each input's content: ``"auto"`` is the per-user folder,
        ``None`` turns it off.
    checkpoint_dir : str, Path or None, default=None
        Where to save a checkpoint after every epoch. A later ``fit`` with the same
        parameters and data resumes from it instead of starting over.
    device : {"auto", "cpu", "cuda", "accelerate"}, default="auto"
        Where to train and predict; ``"auto"`` takes a GPU when one is visible.
        ``"accelerate"`` hands device placement and data parallelism to Hugging Face
        accelerate, for scripts run with ``accelerate launch`` (docs/scaling.md).
    precision : {"auto", "32", "bf16", "fp16"}, default="auto"
        Arithmetic of the forward passes: float32, or mixed precision through
        ``torch.autocast``; weights stay float32. ``"auto"``: bfloat16 where the device
        computes it natively (AMX or AVX512-BF16 CPUs, recent GPUs), except that a CPU
        training step through a whole image CNN runs only the text encoder in bfloat16;
        else float32 (`mmsentiment.precision.resolve_precision`).
    inference_backend : {"auto", "torch", "onnxruntime"}, default="auto"
        What runs the image encoder in prediction: ``"onnxruntime"`` exports it to ONNX
        Runtime once per fitted model (in memory; outputs checked against torch's to 1e-4
        of their scale); on an AVX2 CPU without bfloat16 the image CNN ran 1.3x and a
        whole prediction about 1.1x as fast as in torch's float32 (docs/performance.md);
        ``"auto"`` takes it for float32 prediction on a CPU and torch elsewhere;
        ``"onnxruntime"`` on a GPU warns and runs torch
        (`mmsentiment.encoders.onnx.use_onnxruntime`). Training never uses it.
    callbacks : list of skorch callbacks or (name, callback) pairs, optional
        Further skorch callbacks for the training run (loggers such as
        ``skorch.callbacks.TensorBoard``, or your own); each fit uses copies, run after the
        learning-rate schedule and before checkpointing and early stopping.
    warm_start : bool, default=False
        When fitted already, ``fit`` continues training the fitted network (``max_epochs``
        more, with a new optimizer and schedule) instead of starting from the pretrained
        encoders; the new labels must be among ``classes_``.
    n_jobs : int or None, default=None
        Image decoding threads; ``None``: one per CPU, at most 4; ``-1``: every CPU. Torch's
        own threads are set with ``torch.set_num_threads``.
    random_state : int, RandomState or None, default=None
        Seed for the split, initialisation, shuffling, dropout and augmentation; with an
        integer a CPU fit is repeatable (a GPU fit not bit for bit, docs/scaling.md).
    verbose : int, default=0
        ``0`` is silent; ``1`` shows progress bars (with each epoch's losses and validation
        accuracy); ``2`` also prints skorch's table of epochs.
    text_normalization : {"tweet", None}, default=None
        ``"tweet"`` rewrites social-media texts into words before tokenizing (links, user
        handles, hashtags, emoji, HTML entities: `mmsentiment.inputs.tweets`), in fit and
        prediction alike.
    text_column : str, default="text"
        Column of X holding the texts (DataFrame input).
    image_column : str, default="image_path"
        Column of X holding image paths or PIL images (DataFrame input).

    Notes
    -----
    A text that is None, NaN or blank, and an image that is None, NaN or ``""``, mark that
    modality as absent for the post (docs/guide/bad-input.md).

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    class_count_ : ndarray of shape (n_classes,)
        Training posts of each class (a warm start adds its posts).
    class_prior_ : ndarray of shape (n_classes,)
        Each class's share of the training loss's weight (its posts times their
        ``sample_weight`` and its ``class_weight``), which ``logit_adjustment`` divides out.
    interrupted_ : bool
        Whether the last fit was stopped by Ctrl-C (KeyboardInterrupt); the estimator then
        holds the best weights seen so far and stays usable.
    net_ : mmsentiment.training.SentimentNet
        The trained skorch net (``net_.module_``: the `mmsentiment.nn.MultimodalNet`).
    pipeline_ : RawImages, LowerActivations or PooledFeatures
        The input pipeline chosen for ``finetune`` (`mmsentiment.inputs.pipelines`).
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
                 gradient_checkpointing: bool = False, image_size: int | None = None,
                 lr: float = 1e-3,
                 text_encoder_lr: float = 1e-4,
                 image_encoder_lr: float = 1e-4, weight_decay: float = 0.01,
                 layer_decay: float = 1.0, warmup: float = 0.1, lr_schedule: str = "cosine",
                 class_weight=None, logit_adjustment: float = 0.5,
                 label_smoothing: float = 0.0,
                 auxiliary_weight: float = 0.5,
                 validation_fraction: float | None = 0.1, patience: int = 2,
                 modality_dropout: float = 0.1, on_bad_image: str = "raise",
                 cache_dir="auto", checkpoint_dir=None, device: str = "auto",
                 precision: str = "auto", inference_backend: str = "auto", callbacks=None,
                 warm_start: bool = False,
                 n_jobs: int | None = None, random_state=None,
                 verbose: int = 0, text_normalization: str | None = None,
                 text_column: str = "text",
                 image_column: str = "image_path") -> None:
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.fusion = fusion
        self.finetune = finetune
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.micro_batch_size = micro_batch_size
        self.gradient_checkpointing = gradient_checkpointing
        self.image_size = image_size
        self.lr = lr
        self.text_encoder_lr = text_encoder_lr
        self.image_encoder_lr = image_encoder_lr
        self.weight_decay = weight_decay
        self.layer_decay = layer_decay
        self.warmup = warmup
        self.lr_schedule = lr_schedule
        self.class_weight = class_weight
        self.logit_adjustment = logit_adjustment
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
        self.inference_backend = inference_backend
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.text_normalization = text_normalization
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

    def _validate_X(self, X, reset: bool) -> tuple[list[str], list]:
        validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)
        return extract_columns(X, self.text_column, self.image_column, self.text_normalization)

    def _micro_batch_size(self) -> int | None:
        return get_finetune(self.finetune).resolve_micro_batch_size(self.micro_batch_size)

    # ------------------------------------------------------------------ building blocks
    def build_module(self, n_classes: int, auxiliary: bool = False,
                     seed: int | None = None) -> MultimodalNet:
        """A new network for these parameters (`mmsentiment.nn.build_network`).

        Parameters
        ----------
        n_classes : int
            Outputs of the fusion head.
        auxiliary : bool, default=False
            Add the per-modality auxiliary heads (see `fit`'s ``text_labels``).
        seed : int, optional
            Seed of the head's initialisation (set after the encoders load).

        Returns
        -------
        MultimodalNet
        """
        return build_network(self.text_encoder, self.image_encoder, self.fusion, n_classes,
                             finetune=self.finetune, modality_dropout=self.modality_dropout,
                             frozen_batchnorm=self._micro_batch_size() is not None,
                             gradient_checkpointing=self.gradient_checkpointing,
                             image_size=self.image_size, auxiliary=auxiliary, seed=seed)

    def attach_module(self, module: MultimodalNet, device: str):
        """Make this estimator (``classes_`` set) a fitted model around a trained module."""
        self.net_ = self._net(module, device).initialize()
        self.pipeline_ = self._pipeline(module)
        return self

    def _pipeline(self, module: MultimodalNet):
        return make_pipeline(get_finetune(self.finetune), module,
                             on_bad_image=self.on_bad_image, cache_dir=self.cache_dir,
                             batch_size=self.batch_size, progress=self.verbose > 0,
                             precision=self.precision, n_jobs=self.n_jobs)

    def _net(self, module: MultimodalNet, device: str, **run):
        """The skorch net for ``module``; ``run`` holds what only training needs."""
        return build_net(
            module, n_classes=len(self.classes_), device=device, batch_size=self.batch_size,
            precision=resolve_precision(self.precision, device),
            train_precision=resolve_precision(self.precision, device, trains_convnet=
                                              get_finetune(self.finetune).image_groups is None),
            micro_batch_size=self._micro_batch_size(),
            max_epochs=self.max_epochs, lr=self.lr, text_encoder_lr=self.text_encoder_lr,
            image_encoder_lr=self.image_encoder_lr, weight_decay=self.weight_decay,
            layer_decay=self.layer_decay, warmup=self.warmup, lr_schedule=self.lr_schedule,
            label_smoothing=self.label_smoothing, auxiliary_weight=self.auxiliary_weight,
            patience=self.patience, verbose=self.verbose, **run)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None, text_labels=None,
            image_labels=None) -> MultimodalSentimentClassifier:
        """Fine-tune the encoders and the fusion head on posts ``X`` with labels ``y``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, 2)
            Texts and images (paths or PIL images).
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.
        sample_weight : array-like of shape (n_samples,), optional
            Each post's weight in the loss (times its class weight).
        text_labels, image_labels : array-like of shape (n_samples,), optional
            Each post's label for its text alone and its image alone (e.g. `load_mvsa`'s
            ``text_label`` / ``image_label``), None where unknown: they train auxiliary
            heads (``auxiliary_weight``); ignored, with a warning, when no encoder trains.
            Grid searches and ``cross_validate(..., params=...)`` split all three.

        Returns
        -------
        self
        """
        check_params(self)
        _, y = validate_data(self, X, y, dtype=None, ensure_all_finite=False)
        check_classification_targets(y)
        warm = check_warm_start(self)
        encoder = LabelEncoder().fit(self.classes_ if warm else y)
        unseen = sorted(set(np.unique(y)) - set(encoder.classes_), key=str)
        if unseen:
            raise ValueError(f"warm_start=True continues a fit over the classes "
                             f"{list(self.classes_)}; y holds new labels {unseen[:5]}. Fit "
                             "from scratch (warm_start=False) to add classes.")
        if len(encoder.classes_) < 2:
            raise ValueError(f"y holds only one class ({encoder.classes_[0]!r}); a classifier "
                             "needs two.")
        self.classes_ = encoder.classes_
        y_int = encoder.transform(y).astype(np.int64)
        counts = np.bincount(y_int, minlength=len(self.classes_))
        criterion_weight = class_weights(self.class_weight, self.classes_, y_int)
        prior = class_prior(y_int, len(self.classes_), criterion_weight,
                            None if sample_weight is None else
                            check_sample_weight(sample_weight, y))
        if warm:  # the network has learnt from both fits' posts
            prior = continued_prior(getattr(self, "class_prior_", None),
                                    int(np.sum(getattr(self, "class_count_", 0))), prior, len(y))
            counts = counts + getattr(self, "class_count_", 0)
        columns = self._fit_columns(text_labels, image_labels, sample_weight, y, warm)
        texts, images = extract_columns(X, self.text_column, self.image_column,
                                        self.text_normalization)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        accelerator = make_accelerator() if self.device == "accelerate" else None
        device = device_name(accelerator.device) if accelerator else resolve_device(self.device)
        seed = shared_seed(accelerator, seed)
        status = TrainingStatus()
        cuda = [torch.cuda.current_device()] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=cuda):
            module = self.net_.module_ if warm else self.build_module(
                len(self.classes_), seed=seed, auxiliary="text_label" in columns)
            text_encoder = getattr(module, "text_encoder", None)
            if warm and text_encoder is not None:  # follows set_params: the same network
                text_encoder.set_gradient_checkpointing(self.gradient_checkpointing)
            self.pipeline_ = self._pipeline(module)
            dataset = self.pipeline_.train_dataset(texts, images, module, y_int, device,
                                                   columns)
            train_idx, valid_idx = validation_split(y_int, self.validation_fraction, seed)
            valid = dataset.subset(valid_idx) if len(valid_idx) else None
            if valid is not None and (order := valid.by_text_length()) is not None:
                valid = valid.subset(order)  # its batches pad their texts less
            if accelerator is not None:  # own dropout and flip masks in each process
                torch.manual_seed(seed + accelerator.process_index)
            self.net_ = self._net(
                module, device, n_train=len(train_idx),
                criterion_weight=criterion_weight,
                logit_offsets=logit_offsets(prior, self.logit_adjustment, len(counts)),
                valid=valid,
                checkpoint_dir=self.checkpoint_dir, accelerator=accelerator,
                callbacks=[("status", status), *named_callbacks(self.callbacks)])
            left = 0 if self.checkpoint_dir is None else resume(
                self.net_, self.checkpoint_dir,
                fit_fingerprint(self.get_params(), texts, images, y, columns.values()),
                self.max_epochs, self.verbose)
            train = dataset.subset(train_idx)
            self.net_.partial_fit(train, None, epochs=left) if left else self.net_.fit(train, None)
        self.class_count_, self.class_prior_ = counts, prior
        self._finish_fit(status, accelerator, device)
        return self

    def _finish_fit(self, status: TrainingStatus, accelerator, device: str) -> None:
        """Keep what prediction needs, mark the checkpoint, warn after an interruption."""
        self.interrupted_ = status.interrupted
        if accelerator is not None:  # a plain net around the unwrapped module: it pickles
            history = self.net_.history
            self.attach_module(accelerator.unwrap_model(self.net_.module_), device)
            self.net_.history = history
        self.net_.train_split = None  # the split is a view of every decoded image
        self.net_.module_.drop_auxiliary_heads()
        early = dict(self.net_.callbacks_).get("early_stopping")
        if early is not None:
            early.best_model_weights_ = None  # restored already; keep pickles small
        if self.checkpoint_dir is not None and not status.interrupted:
            mark_finished(self.checkpoint_dir)
        collapsed = collapse_message(self.net_.history, self.classes_, self.class_count_,
                                     epoch=getattr(early, "best_epoch_", None))
        if collapsed is not None and not status.interrupted:
            warnings.warn(collapsed, UserWarning, stacklevel=3)
        if status.interrupted:
            warnings.warn(f"Training was interrupted (KeyboardInterrupt) during epoch "
                          f"{len(self.net_.history)}; the estimator keeps the weights of the "
                          "best epoch so far and can predict. Set checkpoint_dir= to resume "
                          "a fit later.", UserWarning, stacklevel=3)

    def _fit_columns(self, text_labels, image_labels, sample_weight, y, warm: bool) -> dict:
        """Per-post training columns: sample weights, and auxiliary labels where used."""
        labels = (text_labels, image_labels)
        if self.auxiliary_weight == 0 or all(v is None for v in labels):
            labels = None
        elif warm:
            warnings.warn("text_labels / image_labels are ignored by a warm start: the "
                          "auxiliary heads were removed when the first fit ended.",
                          UserWarning, stacklevel=3)
            labels = None
        elif not get_finetune(self.finetune).trains_encoders:
            warnings.warn(f'text_labels / image_labels are ignored with finetune='
                          f'"{self.finetune}": auxiliary targets train the encoders, which '
                          'stay frozen.', UserWarning, stacklevel=3)
            labels = None
        return training_columns(y, self.classes_, sample_weight, labels)

    # ------------------------------------------------------------------ predict
    def _outputs(self, X, logits: bool) -> np.ndarray:
        """The adjusted logits or probabilities for ``X``, chunk by chunk
        (`mmsentiment.inputs.predict_chunks`)."""
        check_is_fitted(self, "net_")
        texts, images = self._validate_X(X, reset=False)
        onnx = use_onnxruntime(self.inference_backend,
                               str(next(self.net_.module_.parameters()).device),
                               self.net_._precision(training=False).dtype)
        with large_blocks_reused(), onnx_inference(onnx):
            return np.concatenate([self._scores(dataset, logits) for dataset in predict_chunks(
                self.pipeline_, texts, images, self.net_.module_, str(self.net_.device))])

    def _scores(self, dataset, logits: bool) -> np.ndarray:
        """Adjusted logits, or their softmax, of the fitted network on one dataset."""
        order = dataset.by_text_length()  # batches of similar lengths pad less
        with torch.inference_mode():
            out = np.asarray(self.net_.forward(
                dataset if order is None else dataset.subset(order)), dtype=np.float64)
        if order is not None:
            out[order] = out.copy()
        out = out - logit_offsets(getattr(self, "class_prior_", None), self.logit_adjustment,
                                  len(self.classes_))
        return out if logits else softmax(out, axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, one row per post, columns ordered as ``classes_``."""
        return self._outputs(X, logits=False)

    def decision_function(self, X) -> np.ndarray:
        """The head's logits after ``logit_adjustment``, (n_samples, n_classes); for two
        classes, class 1's minus class 0's."""
        scores = self._outputs(X, logits=True)
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X) -> np.ndarray:
        """The most probable class label of each post."""
        proba = self.predict_proba(X)  # first: it checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithms of `predict_proba` (``-inf`` where a probability is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    @property
    def history_(self):
        """Per-epoch training record (skorch ``History``): losses, accuracy, durations."""
        check_is_fitted(self, "net_")
        return self.net_.history
