"""Progress bars and the interrupted-fit flag."""

from __future__ import annotations

from types import SimpleNamespace

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.training import TrainingStatus


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


def test_training_status_marks_an_epoch_that_did_not_end():
    status, net = TrainingStatus(), SimpleNamespace()
    status.on_epoch_begin(net)
    assert status.interrupted
    status.on_epoch_end(net)
    assert not status.interrupted
