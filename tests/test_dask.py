"""GridSearchCV over encoders on a real Dask cluster (scheduler + 2 worker processes on
loopback) through joblib's dask backend."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from mmsentiment import MultimodalSentimentClassifier

distributed = pytest.importorskip("distributed", reason="dask[distributed] not installed")


def test_grid_search_on_a_local_dask_cluster(small, tmp_path):
    X, y = small
    grid = {"image_encoder": ["tf_efficientnet_lite0", "tf_efficientnet_lite2"]}
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=3, random_state=0,
                                        cache_dir=tmp_path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream, \
                joblib.parallel_backend("dask"):
            search = GridSearchCV(clf, grid, cv=2, n_jobs=-1).fit(X, y)
        cluster_workers = set(client.scheduler_info()["workers"])
    # 2 candidates x 2 folds ran as tasks, on the cluster's worker processes.
    used = {task["worker"] for task in stream.data}
    assert len(stream.data) >= 4 and used and used <= cluster_workers
    assert search.cv_results_["params"] == [{"image_encoder": e} for e in grid["image_encoder"]]
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.predict(X[:3]).shape == (3,)
    # The workers filled the shared feature cache: both image encoders' folders exist.
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("image-")]) == 2
