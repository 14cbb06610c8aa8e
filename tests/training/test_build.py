"""Assembly of a training run: split, class weights, callbacks, the net."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, PrintLog

from mmsentiment.training import class_weights, named_callbacks, validation_split


def test_validation_split_is_stratified_sorted_and_seeded():
    y = np.array([0] * 30 + [1] * 10 + [2] * 10)
    train, valid = validation_split(y, 0.1, seed=3)
    assert len(valid) == 5 and len(train) == 45
    assert set(np.bincount(y[valid])) <= {1, 2, 3} and len(np.unique(y[valid])) == 3
    assert np.all(np.diff(train) > 0) and np.all(np.diff(valid) > 0)
    assert not set(train) & set(valid)
    again, _ = validation_split(y, 0.1, seed=3)
    other, _ = validation_split(y, 0.1, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    everything, none = validation_split(y, None, seed=3)
    assert len(everything) == 50 and len(none) == 0


def test_too_small_for_a_split_trains_on_everything():
    with pytest.warns(UserWarning, match="Too few samples"):
        train, valid = validation_split(np.array([0, 1, 1]), 0.1, seed=0)
    assert len(train) == 3 and len(valid) == 0


def test_class_weights():
    classes = np.array(["negative", "neutral", "positive"])
    y = np.array([0, 0, 0, 1, 2, 2])
    assert class_weights(None, classes, y) is None
    balanced = class_weights("balanced", classes, y)
    assert balanced.tolist() == pytest.approx([6 / 9, 2.0, 1.0])
    assert class_weights({"neutral": 1.5}, classes, y).tolist() == [1.0, 1.5, 1.0]
    with pytest.raises(ValueError, match="unknown classes"):
        class_weights({"angry": 2.0}, classes, y)


def test_user_callbacks_are_named_copies():
    log = PrintLog()
    named = named_callbacks([log, ("mine", PrintLog())])
    assert [name for name, _ in named] == ["user_0_PrintLog", "mine"]
    assert named[0][1] is not log
    with pytest.raises(TypeError, match="skorch callbacks"):
        named_callbacks([print])


class Order(Callback):
    def __init__(self, seen: list) -> None:
        self.seen = seen


def test_callback_order_and_what_the_net_is_given(tmp_path):
    from mmsentiment.encoders import ImageEncoder, TextEncoder
    from mmsentiment.inputs import PostDataset
    from mmsentiment.nn import ConcatFusion, MultimodalNet
    from mmsentiment.training import Precision, build_net

    text = TextEncoder("all-MiniLM-L6-v2")
    image = ImageEncoder(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                             torch.nn.AdaptiveAvgPool2d(1),
                                             torch.nn.Flatten()))
    module = MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 3))
    valid = PostDataset({"text": ["a"], "text_present": torch.ones(1, dtype=torch.bool)})
    net = build_net(module, n_classes=3, device="cpu", precision=Precision("fp16"),
                    micro_batch_size=4, max_epochs=2, n_train=64, valid=valid,
                    callbacks=[("mine", Order([]))], checkpoint_dir=tmp_path, verbose=1,
                    criterion_weight=torch.tensor([1.0, 2.0, 1.0]))
    names = [name for name, _ in net.callbacks]
    assert names == ["lr_schedule", "predicted_classes", "mine", "progress", "checkpoint",
                     "early_stopping"]
    assert net.micro_batch_size == 4 and net.precision.scales_loss
    assert net.classes == [0, 1, 2] and net.max_epochs == 2
    assert net.initialize().optimizer_.defaults["fused"] is True  # AdamW's fused kernel
    schedule = dict(net.callbacks)["lr_schedule"].lr_lambda
    assert schedule.total_steps == 4 and schedule.warmup_steps == 0


def test_adamw_runs_fused_on_the_cpu_with_the_same_update():
    from mmsentiment.training.build import fused_optimizer

    assert fused_optimizer("cpu") is True and fused_optimizer("meta") is None
    torch.manual_seed(0)
    weights = [torch.randn(5, 3), torch.randn(3)]
    grads = [torch.randn_like(w) for w in weights]
    after = []
    for fused in (None, fused_optimizer("cpu")):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        opt = torch.optim.AdamW([{"params": params[:1], "lr": 1e-2}, {"params": params[1:]}],
                                lr=1e-3, weight_decay=0.01, fused=fused)
        for _ in range(3):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
        after.append([p.detach() for p in params])
    for plain, fused in zip(*after):
        assert not torch.equal(plain, weights[0] if plain.ndim == 2 else weights[1])
        torch.testing.assert_close(plain, fused)
