"""scikit-learn's common estimator checks.

The estimator's input is a text and an image per row. Checks that feed a numeric matrix and
expect a fit to succeed on it cannot apply; each is listed below with the reason. What those
checks test (pickling, idempotent fits, n_features_in_, ...) is tested on real posts in
test_sklearn_contract.py (decision_function's agreement with predict_proba in
test_prediction.py).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mmsentiment import MultimodalSentimentClassifier

NUMERIC_X = ("feeds a numeric matrix as X and expects a successful fit; this estimator's "
             "X holds one text and one image per row")

EXPECTED_FAILED = {
    name: NUMERIC_X for name in [
        "check_fit_score_takes_y", "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
        "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
        "check_estimators_pickle", "check_f_contiguous_array_estimator",
        "check_classifier_data_not_an_array", "check_classifiers_classes",
        "check_classifiers_train", "check_supervised_y_2d", "check_class_weight_classifiers",
        "check_methods_sample_order_invariance", "check_methods_subset_invariance",
        "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
        "check_n_features_in", "check_fit2d_predict1d",
        "check_sample_weights_pandas_series", "check_sample_weights_not_an_array",
        "check_sample_weights_list", "check_sample_weights_shape",
        "check_sample_weights_not_overwritten", "check_sample_weight_equivalence_on_dense_data",
        "check_classifiers_one_label_sample_weights", "check_decision_proba_consistency",
    ]
}
EXPECTED_FAILED["check_positive_only_tag_during_fit"] = (
    "passes negative numbers as X and expects them accepted; X must hold texts and images")
EXPECTED_FAILED["check_estimators_nan_inf"] = (
    "expects a NaN/inf-specific error for a numeric X; a numeric X is rejected earlier, "
    "as not holding texts")


@parametrize_with_checks(
    [MultimodalSentimentClassifier(finetune="frozen", max_epochs=1, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
