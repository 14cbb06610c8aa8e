"""Fit fingerprints and resuming from a checkpoint folder."""

from __future__ import annotations

import json

import numpy as np

from mmsentiment.training import fit_fingerprint, mark_finished, resume


def test_fingerprint_follows_parameters_and_data_not_verbosity(image_file):
    params = {"lr": 1e-3, "verbose": 0, "device": "cpu"}
    texts, images, y = ["a", None], [image_file(), None], np.array(["x", "y"])
    base = fit_fingerprint(params, texts, images, y)
    assert fit_fingerprint({**params, "verbose": 2, "device": "cuda"}, texts, images, y) == base
    assert fit_fingerprint({**params, "lr": 1e-4}, texts, images, y) != base
    assert fit_fingerprint(params, ["b", None], images, y) != base
    assert fit_fingerprint(params, texts, images, y[::-1]) != base
    other = image_file("other.png", color=(0, 0, 255))
    assert fit_fingerprint(params, texts, [other, None], y) != base


def test_resume_without_a_checkpoint_starts_over_and_stamps(tmp_path):
    folder = tmp_path / "ckpt"
    assert resume(net=None, folder=folder, fingerprint="abc", max_epochs=3) == 0
    assert json.loads((folder / "fit.json").read_text()) == {"fingerprint": "abc"}
    mark_finished(folder)
    assert json.loads((folder / "fit.json").read_text()) == {"fingerprint": "abc",
                                                             "finished": True}
