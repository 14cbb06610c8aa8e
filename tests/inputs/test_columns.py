"""Column extraction and cleaning: texts and images, None where missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsentiment.inputs import extract_columns, is_missing


def test_extract_columns_errors():
    with pytest.raises(ValueError, match="3 feature"):
        extract_columns([["a", "b", "c"]], "text", "image_path")
    with pytest.raises(ValueError, match="lacks the column"):
        extract_columns(pd.DataFrame({"text": ["a"]}), "text", "image_path")
    with pytest.raises(ValueError, match="row 1: 7"):
        extract_columns([["a", "x.jpg"], [7, "y.jpg"]], "text", "image_path")


def test_missing_values_become_none():
    X = pd.DataFrame({"text": ["ok", "  ", None, np.nan], "image_path": ["a.jpg", "", None, "b"]})
    texts, images = extract_columns(X, "text", "image_path")
    assert texts == ["ok", None, None, None]
    assert images == ["a.jpg", None, None, "b"]
    assert is_missing(pd.NA) and not is_missing("")


def test_invalid_unicode_is_named_by_row():
    with pytest.raises(ValueError, match=r"not valid Unicode.*row 1"):
        extract_columns([["fine", None], ["broken \ud83d", None]], "text", "image_path")
