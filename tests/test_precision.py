"""Precision settings."""

from __future__ import annotations

import pytest
import torch

from mmsentiment.training import Precision


@pytest.mark.parametrize("name, dtype, scales", [("32", None, False),
                                                 ("bf16", torch.bfloat16, False),
                                                 ("fp16", torch.float16, True)])
def test_settings(name, dtype, scales):
    precision = Precision(name)
    assert precision.dtype == dtype and precision.scales_loss == scales
    with precision.autocast("cpu"):
        out = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert out.dtype == (dtype or torch.float32)


def test_unknown_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        Precision("int8")
