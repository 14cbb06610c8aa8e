"""The skorch net: micro-batches, auxiliary losses, mixed precision."""

from __future__ import annotations

import pytest
import torch

from mmsentiment.nn import AuxiliaryOutput
from mmsentiment.training import Precision, SentimentNet


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x, **columns):  # other columns (presence, sample weights) unused
        return self.fc(x)


@pytest.mark.parametrize("micro", [1, 2, 3])
@pytest.mark.parametrize("weight", [None, [1.0, 3.0, 0.5]])
def test_micro_batches_give_the_whole_batch_gradient(micro, weight):
    from mmsentiment.training import SentimentNet

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


class _Tokens(torch.nn.Module):
    """Masked mean of token embeddings; records the token width of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.fc, self.widths = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 3), []

    def forward(self, input_ids, attention_mask, **columns):
        self.widths.append(input_ids.shape[1])
        mask = attention_mask[..., None].float()
        return self.fc((self.embed(input_ids) * mask).sum(1) / mask.sum(1))


def test_micro_batches_drop_the_padding_their_own_texts_do_not_need():
    # Rows of 1, 12, 2 and 2 tokens, padded to 20: chunks of 2 need widths 12 and 2,
    # rounded up to the tokenizer's multiple of 8.
    mask = (torch.arange(20) < torch.tensor([[1], [12], [2], [2]])).long()
    ids = torch.randint(1, 10, (4, 20), generator=torch.Generator().manual_seed(0)) * mask
    batch = ({"input_ids": ids, "attention_mask": mask,
              "text_present": torch.ones(4, dtype=torch.bool)}, torch.tensor([0, 1, 2, 1]))
    steps = []
    for size in (None, 2):
        torch.manual_seed(1)
        net = SentimentNet(_Tokens, criterion=torch.nn.CrossEntropyLoss, micro_batch_size=size,
                           classes=[0, 1, 2]).initialize()
        steps.append((net, net.train_step_single(batch)))
    (whole, s1), (chunked, s2) = steps
    assert whole.module_.widths == [20] and chunked.module_.widths == [16, 8]
    torch.testing.assert_close(s1["loss"], s2["loss"])
    for a, b in zip(whole.module_.parameters(), chunked.module_.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    with torch.no_grad():  # validation passes of a fit trim their chunks the same way
        chunked.fitting_ = True
        torch.testing.assert_close(chunked.infer(batch[0]), whole.infer(batch[0]))
    assert chunked.module_.widths[-2:] == [16, 8]


@pytest.mark.parametrize("micro", [1, 3])
def test_validation_runs_in_micro_batches_with_the_whole_batch_result(micro):
    from mmsentiment.training import SentimentNet

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


def test_auxiliary_loss_adds_each_modality_cross_entropy():
    net = SentimentNet(torch.nn.Linear(2, 3), criterion=torch.nn.CrossEntropyLoss,
                       auxiliary_weight=0.5).initialize()
    torch.manual_seed(0)
    logits, text_logits, image_logits = torch.randn(3, 4, 3).unbind(0)
    y = torch.tensor([0, 1, 2, 1])
    text_label = torch.tensor([0, -1, 2, 1])
    image_label = torch.full((4,), -1)  # no image labels at all: no image term
    output = AuxiliaryOutput(logits, ((text_logits, text_label), (image_logits, image_label)))
    loss = net.get_loss(output, y)
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits, y) + 0.5 * ce(text_logits[[0, 2, 3]], text_label[[0, 2, 3]])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert net.get_loss(logits, y).item() == pytest.approx(ce(logits, y).item(), rel=1e-6)




@pytest.mark.parametrize("name, dtype", [("bf16", torch.bfloat16), ("32", torch.float32)])
def test_forward_runs_in_the_precision_and_returns_float32(name, dtype):
    seen = []
    torch.manual_seed(0)
    net = SentimentNet(_Linear, precision=Precision(name), classes=[0, 1, 2]).initialize()
    net.module_.fc.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    x = {"x": torch.randn(5, 4), "text_present": torch.ones(5, dtype=torch.bool)}
    with torch.no_grad():
        out = net.infer(x)
        exact = net.module_.fc(x["x"])
    assert seen[0] == dtype and out.dtype == torch.float32
    torch.testing.assert_close(out, exact, atol=0.05, rtol=0.05)
    assert net.scaler_.is_enabled() is False


@pytest.mark.parametrize("class_weight", [None, [1.0, 3.0, 0.5]])
def test_sample_weights_weigh_each_rows_loss(class_weight):
    torch.manual_seed(0)
    cw = None if class_weight is None else torch.tensor(class_weight)
    net = SentimentNet(torch.nn.Linear(2, 3), criterion=torch.nn.CrossEntropyLoss,
                       criterion__weight=cw, criterion__label_smoothing=0.1).initialize()
    logits, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    sw = torch.tensor([1.0, 0.0, 2.0, 0.5, 1.0])
    loss = net.get_loss(logits, y, X={"sample_weight": sw})
    per_row = torch.nn.functional.cross_entropy(logits, y, weight=cw, label_smoothing=0.1,
                                                reduction="none")
    rows = (cw[y] if cw is not None else torch.ones(5)) * sw
    assert loss.item() == pytest.approx((per_row * sw).sum().item() / rows.sum().item())
    ones = net.get_loss(logits, y, X={"sample_weight": torch.ones(5)})
    assert ones.item() == pytest.approx(net.get_loss(logits, y).item(), rel=1e-6)


@pytest.mark.parametrize("micro", [1, 2])
def test_micro_batches_keep_the_sample_weighted_gradient(micro):
    batch = ({"x": torch.randn(6, 4), "text_present": torch.ones(6, dtype=torch.bool),
              "sample_weight": torch.tensor([1.0, 0.0, 3.0, 0.5, 1.0, 2.0])},
             torch.tensor([0, 1, 2, 0, 1, 2]))
    grads = []
    for size in (None, micro):
        torch.manual_seed(1)
        net = SentimentNet(_Linear, criterion=torch.nn.CrossEntropyLoss,
                           micro_batch_size=size, classes=[0, 1, 2]).initialize()
        net.train_step_single(batch)
        grads.append([p.grad.clone() for p in net.module_.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
