"""Mixed precision, micro-batches and progress reporting of fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsentiment import MultimodalSentimentClassifier


@pytest.mark.parametrize("precision, dtype", [("bf16", "torch.bfloat16"),
                                              ("fp16", "torch.float16")])
def test_mixed_precision_fit_and_predict(small, precision, dtype):
    X, y = small
    seen = []
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1, batch_size=12,
                                        precision=precision, validation_fraction=None,
                                        random_state=0)
    build = clf._build_module

    def spy(n_classes):
        module = build(n_classes)
        module.head.register_forward_hook(lambda m, i, out: seen.append(str(out.dtype)))
        return module

    clf._build_module = spy
    clf.fit(X, y)
    proba = clf.predict_proba(X[:5])
    assert proba.dtype == np.float64 and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert seen and set(seen) == {dtype}  # the head really ran in the reduced precision
    assert clf.net_.scaler_.is_enabled() == (precision == "fp16")


def test_unknown_precision_is_refused(small):
    with pytest.raises(ValueError, match="precision must be one of"):
        MultimodalSentimentClassifier(precision="int8").fit(*small)


def test_progress_bars_only_when_verbose(small, capsys):
    X, y = small
    MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, verbose=1,
                                  random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err
    assert "valid_loss" in err and "valid_acc" in err
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, verbose=0,
                                        random_state=0).fit(X, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert len(clf.history_) == 2 and "valid_acc" in clf.history_[-1]
    # The validation split (a view of every post) is not kept in the fitted model.
    assert clf.net_.train_split is None


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x, text_present=None):
        return self.fc(x)


@pytest.mark.parametrize("micro", [1, 2, 3])
@pytest.mark.parametrize("weight", [None, [1.0, 3.0, 0.5]])
def test_micro_batches_give_the_whole_batch_gradient(micro, weight):
    from mmsentiment.net import SentimentNet

    torch.manual_seed(0)
    batch = ({"x": torch.randn(7, 4), "text_present": torch.ones(7, dtype=torch.bool)},
             torch.tensor([0, 1, 2, 0, 1, 2, 2]))
    nets = []
    for size in (None, micro):
        torch.manual_seed(1)
        net = SentimentNet(_Linear, criterion=torch.nn.CrossEntropyLoss,
                           criterion__weight=None if weight is None else torch.tensor(weight),
                           micro_batch_size=size, classes=[0, 1, 2]).initialize()
        step = net.train_step_single(batch)
        nets.append((net, step))
    (whole, s1), (chunked, s2) = nets
    assert torch.allclose(s1["loss"], s2["loss"], atol=1e-6)
    assert s2["y_pred"].shape == (7, 3)
    for a, b in zip(whole.module_.parameters(), chunked.module_.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


@pytest.mark.parametrize("micro", [1, 3])
def test_validation_runs_in_micro_batches_with_the_whole_batch_result(micro):
    from mmsentiment.net import SentimentNet

    torch.manual_seed(0)
    x = {"x": torch.randn(7, 4), "text_present": torch.ones(7, dtype=torch.bool)}
    net = SentimentNet(_Linear, micro_batch_size=micro, classes=[0, 1, 2]).initialize()
    seen = []
    net.module_.register_forward_hook(lambda mod, args, kwargs, out: seen.append(len(out)),
                                      with_kwargs=True)
    with torch.no_grad():
        net.fitting_ = True  # as during fit's validation passes
        chunked = net.infer(x)
        net.fitting_ = False  # prediction after fit: whole batches
        whole = net.infer(x)
    assert seen[:-1] == [micro] * (7 // micro) + ([7 % micro] if 7 % micro else [])
    assert seen[-1] == 7
    torch.testing.assert_close(chunked, whole)


def test_micro_batch_size_in_a_fit(small):
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1, batch_size=12,
                                        micro_batch_size=5, random_state=0).fit(X, y)
    assert clf.predict_proba(X[:3]).shape == (3, 3)
    assert clf.net_.micro_batch_size == 5
    with pytest.raises(ValueError, match="micro_batch_size"):
        MultimodalSentimentClassifier(micro_batch_size=0).fit(X, y)


@pytest.mark.parametrize("finetune, expected", [("full", 4), ("top", None), ("frozen", None)])
def test_auto_micro_batches_only_for_full_fine_tuning(finetune, expected):
    clf = MultimodalSentimentClassifier(finetune=finetune)
    assert clf.micro_batch_size == "auto"  # the parameter itself stays as given
    assert clf._micro_batch_size() == expected


def test_micro_batches_freeze_batchnorm_statistics():
    from mmsentiment.encoders import ImageEncoder, TextEncoder
    from mmsentiment.fusion import ConcatFusion
    from mmsentiment.model import MultimodalNet

    text, image = TextEncoder("all-MiniLM-L6-v2"), ImageEncoder("tf_efficientnet_lite0")
    for frozen in (False, True):
        net = MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 3),
                            frozen_batchnorm=frozen).train()
        norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(m.training != frozen for m in norms)
        assert net.head.training and net.text_encoder.training
        assert all(p.requires_grad for m in norms for p in m.parameters())
    pixels = torch.randint(0, 255, (4, 3, 224, 224), dtype=torch.uint8)
    before = norms[0].running_mean.clone()
    image(pixels)  # a forward pass in training mode leaves frozen statistics alone
    assert torch.equal(norms[0].running_mean, before)


@pytest.mark.parametrize("schedule, expected", [("exponential", 0.9 ** 2), ("cosine", 0.0)])
def test_learning_rate_schedules(small, schedule, expected):
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, batch_size=12,
                                        lr_schedule=schedule, warmup=0.0, cache_dir=None,
                                        validation_fraction=None, random_state=0).fit(X, y)
    groups = clf.net_.optimizer_.param_groups
    # After two epochs: two falls by 0.9, or the end of the cosine decay.
    assert groups and all(g["lr"] == pytest.approx(expected * g["initial_lr"], abs=1e-12)
                          for g in groups)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        MultimodalSentimentClassifier(lr_schedule="step").fit(X, y)
