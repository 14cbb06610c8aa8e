"""Grid search over image encoders and fine-tuning modes with a plain GridSearchCV.

    python examples/grid_search_encoders.py
"""

from sklearn.model_selection import GridSearchCV

from mmsentiment import MultimodalSentimentClassifier, load_demo

X, y = load_demo(return_X_y=True)
search = GridSearchCV(
    MultimodalSentimentClassifier(finetune="frozen", max_epochs=10, random_state=0),
    {
        "image_encoder": ["tf_efficientnet_lite0", "tf_efficientnet_lite2"],
        "fusion": ["concat", "paper"],
    },
    cv=3,
)
search.fit(X, y)
print("best:", search.best_params_, "cv accuracy", round(search.best_score_, 3))
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(f"  {params} -> {score:.3f}")
