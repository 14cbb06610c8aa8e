"""The mmsentiment command: train, predict, evaluate, validate, errors and exit codes; its
train options generated from the estimator; the benchmark scripts' helpers (benchmarks/)."""

from __future__ import annotations

import argparse
import doctest
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmsentiment import MultimodalSentimentClassifier, load_demo
from mmsentiment.cli import build_parser, main
from mmsentiment.cli_files import CLIError, read_table, save_model
from mmsentiment.cli_options import docstring_parameters, estimator_params, first_sentence
from mmsentiment.model_files import file_format

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def benchmarks(monkeypatch):
    """The benchmark scripts' folder on sys.path: they live in the repository, not the
    package, and import each other as plain modules."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def train_parser() -> argparse.ArgumentParser:
    """The ``train`` subcommand's parser."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def parse_train(*options: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", "posts.csv", "-o", "m.joblib", *options])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The demo set as CSV (train) and Parquet (test) files, with a saved frozen model."""
    folder = tmp_path_factory.mktemp("cli")
    df = load_demo()
    train = df.groupby("label").head(14)
    test = df.drop(train.index).groupby("label").head(4)
    train.to_csv(folder / "train.csv", index=False)
    test.to_parquet(folder / "test.parquet", index=False)
    model = folder / "model.safetensors"
    code = main(["train", str(folder / "train.csv"), "-o", str(model), "--finetune", "frozen",
                 "--epochs", "3", "--seed", "0", "--verbose", "0",
                 "--plot", str(folder / "curves.png")])
    assert code == 0
    return folder, train, test, model


def test_train_writes_a_model_and_curves(files, capsys):
    folder, *_, model = files
    assert model.stat().st_size > 10_000
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_writes_labels_and_probabilities(files, capsys):
    folder, _, test, model = files
    out = folder / "pred.jsonl"
    assert main(["predict", str(model), str(folder / "test.parquet"), "-o", str(out)]) == 0
    pred = pd.read_json(out, lines=True)
    assert len(pred) == len(test) and list(pred["id"]) == list(test["id"])
    proba = pred[[f"proba_{c}" for c in ("negative", "neutral", "positive")]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    classes = np.array(["negative", "neutral", "positive"])
    assert list(pred["prediction"]) == list(classes[proba.argmax(axis=1)])


def test_evaluate_prints_a_report_and_draws_the_matrix(files, capsys):
    folder, _, test, model = files
    png = folder / "cm.png"
    assert main(["evaluate", str(model), str(folder / "test.parquet"),
                 "--confusion-matrix", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"{len(test)} posts: accuracy" in out and "weighted avg" in out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_model_folders_in_and_out(files, tmp_path, capsys):
    folder, _, test, model = files
    clf = MultimodalSentimentClassifier.load(model)
    out = save_model(clf, tmp_path / "mvsa-model")  # no suffix: a model folder
    assert sorted(p.name for p in out.iterdir()) == \
        ["README.md", "config.json", "model.safetensors"]
    data = str(folder / "test.parquet")
    assert main(["predict", str(out), data, "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(model), data, "-o", str(tmp_path / "b.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"),
                                  pd.read_csv(tmp_path / "b.csv"))
    with pytest.raises(CLIError, match="pass --force"):
        save_model(clf, out)
    assert save_model(clf, out, force=True) == out
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(CLIError, match="holds no mmsentiment model"):
        save_model(clf, other, force=True)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_validate_exit_codes(files, tmp_path, capsys):
    folder, train, *_ = files
    assert main(["validate", str(folder / "train.csv")]) == 0
    bad = train.copy()
    bad.loc[bad.index[2], "image_path"] = str(tmp_path / "gone.jpg")
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["validate", str(tmp_path / "bad.csv")]) == 3
    assert "missing_image_file" in capsys.readouterr().out


def test_errors_are_one_line_without_traceback(files, tmp_path, capsys):
    folder, train, _, model = files
    train.rename(columns={"text": "tweet"}).to_csv(tmp_path / "renamed.csv", index=False)
    assert main(["train", str(tmp_path / "renamed.csv"), "-o", str(tmp_path / "m.joblib"),
                 "--verbose", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmsentiment train: error:") and "tweet" in err
    assert "\n" not in err and "Traceback" not in err
    assert main(["--debug", "predict", str(model), str(tmp_path / "nope.csv"),
                 "-o", str(tmp_path / "p.csv")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["predict", str(model), str(tmp_path / "data.xlsx"),
                 "-o", str(tmp_path / "p.csv")]) == 1
    assert "unknown data format" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["train"])
    assert usage.value.code == 2


def test_debug_shows_the_traceback(files, tmp_path, capsys):
    folder, train, *_ = files
    train.assign(label="positive").to_csv(tmp_path / "one.csv", index=False)
    assert main(["--debug", "train", str(tmp_path / "one.csv"), "-o",
                 str(tmp_path / "m.joblib"), "--verbose", "0"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "only one class" in err


def test_relative_image_paths_follow_the_data_file(tmp_path):
    df = load_demo().head(2)
    (tmp_path / "imgs").mkdir()
    for p in df["image_path"]:
        shutil.copy(p, tmp_path / "imgs")
    rel = df.assign(image_path=["imgs/" + p.rsplit("/", 1)[-1] for p in df["image_path"]])
    rel.to_json(tmp_path / "posts.jsonl", orient="records", lines=True)
    back = read_table(tmp_path / "posts.jsonl", "image_path")
    assert all(p.startswith(str(tmp_path)) for p in back["image_path"])
    assert json.loads((tmp_path / "posts.jsonl").read_text().splitlines()[0])["image_path"] \
        .startswith("imgs/")


def test_every_estimator_parameter_is_a_train_option():
    params = MultimodalSentimentClassifier().get_params()
    dests = {a.dest for a in train_parser()._actions}
    skipped = {"callbacks", "warm_start"}  # Python objects; a new model per command
    assert set(params) - skipped <= dests
    assert not skipped & dests
    # Unset, every option is the estimator's default, except the CLI's progress bars.
    for name in skipped:
        params.pop(name)
    assert estimator_params(parse_train()) == {**params, "verbose": 1}
    # Each one is set by its own option (and the aliases kept for users: --epochs, --seed).
    flags = {a.dest: a.option_strings for a in train_parser()._actions}
    for name in params:
        assert f"--{name.replace('_', '-')}" in flags[name]
    assert "--epochs" in flags["max_epochs"] and "--seed" in flags["random_state"]


def test_train_options_parse_values_by_the_parameters_types():
    args = parse_train(
        "--fusion", "attention", "--finetune", "top", "--text-encoder-lr", "1e-4",
        "--image-encoder-lr", "3e-4", "--label-smoothing", "0.1", "--layer-decay", "0.8",
        "--patience", "3", "--epochs", "5", "--seed", "7", "--micro-batch-size", "0",
        "--validation-fraction", "0", "--class-weight", '{"neutral": 1.5}',
        "--device", "cuda:1", "--precision", "bf16", "--cache-dir", "none",
        "--lr-schedule", "exponential", "--text-encoder", "all-mpnet-base-v2")
    params = estimator_params(args)
    assert params["fusion"] == "attention" and params["finetune"] == "top"
    assert params["text_encoder_lr"] == 1e-4 and params["image_encoder_lr"] == 3e-4
    assert params["label_smoothing"] == 0.1 and params["layer_decay"] == 0.8
    assert params["patience"] == 3 and params["max_epochs"] == 5 and params["random_state"] == 7
    assert params["micro_batch_size"] is None and params["validation_fraction"] is None
    assert params["class_weight"] == {"neutral": 1.5} and params["device"] == "cuda:1"
    assert params["precision"] == "bf16" and params["cache_dir"] is None
    assert params["lr_schedule"] == "exponential"
    assert params["text_encoder"] == "all-mpnet-base-v2"
    clf = MultimodalSentimentClassifier(**params)
    assert clf.get_params()["fusion"] == "attention"
    more = estimator_params(parse_train("--micro-batch-size", "8", "--class-weight", "balanced",
                                        "--max-epochs", "2", "--random-state", "none"))
    assert more["micro_batch_size"] == 8 and more["class_weight"] == "balanced"
    assert more["max_epochs"] == 2 and more["random_state"] is None


def test_train_choices_come_from_the_docstring():
    from mmsentiment.nn import FUSIONS

    actions = {a.dest: a for a in train_parser()._actions}
    assert "attention" in actions["fusion"].choices
    assert set(actions["fusion"].choices) == set(FUSIONS)  # the docstring lists every head
    assert list(actions["finetune"].choices) == ["full", "top-image", "top", "frozen"]
    assert list(actions["precision"].choices) == ["auto", "32", "bf16", "fp16"]
    assert actions["device"].choices is None  # "cuda:1" is a device too


def test_train_help_comes_from_the_docstring(capsys):
    docs = docstring_parameters(MultimodalSentimentClassifier)
    actions = {a.dest: a for a in train_parser()._actions}
    for name in set(MultimodalSentimentClassifier().get_params()) - {"callbacks",
                                                                      "warm_start"}:
        summary = first_sentence(docs[name][1])
        assert summary and actions[name].help.startswith(summary.replace("%", "%%")), name
    assert actions["max_epochs"].help.startswith("Upper bound on training epochs.")
    assert "(default: 3)" in actions["max_epochs"].help
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "Learning rate of the fusion head." in out and "--epochs" in out


def test_param_sets_any_parameter_and_rejects_unknown_keys(capsys):
    params = estimator_params(parse_train("--param", "fusion=attention", "--param",
                                          "text-encoder-lr=2e-4", "--param",
                                          'class_weight={"neutral": 2}', "--lr", "0.01",
                                          "--param", "lr=0.02"))
    assert params["fusion"] == "attention" and params["text_encoder_lr"] == 2e-4
    assert params["class_weight"] == {"neutral": 2} and params["lr"] == 0.02  # --param wins
    for bad, says in [("nope=1", "unknown parameter 'nope'"),
                      ("callbacks=x", "callbacks cannot be given on the command line"),
                      ("patience=soon", "patience: expected an integer; got 'soon'"),
                      ("lr", "expected KEY=VALUE")]:
        with pytest.raises(SystemExit) as usage:
            main(["train", "posts.csv", "-o", "m.joblib", "--param", bad])
        assert usage.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("mmsentiment train: error: argument --param:"), err
        assert says in err[-1] and len(err) == 2  # the short usage line, then the error


def test_bad_option_values_are_usage_errors(capsys):
    for option, value, says in [("--fusion", "sum", "expected 'concat', 'paper' or "
                                                    "'attention'"),
                                ("--class-weight", "heavy", "a JSON object"),
                                ("--micro-batch-size", "big", "'auto', an integer or none"),
                                ("--batch-size", "3.5", "an integer")]:
        with pytest.raises(SystemExit) as usage:
            main(["train", "posts.csv", "-o", "m.joblib", option, value])
        assert usage.value.code == 2
        assert says in capsys.readouterr().err


def test_benchmark_is_no_longer_a_command(capsys):
    with pytest.raises(SystemExit) as usage:
        main(["benchmark", "--root", "."])
    assert usage.value.code == 2
    assert importlib.util.find_spec("mmsentiment.benchmark") is None  # tooling left the package


def test_benchmark_script_writes_the_report(tmp_path, capsys, benchmarks):
    import mvsa

    results = tmp_path / "runs.jsonl"
    runs = []
    for seed, acc in enumerate([0.70, 0.74]):
        for config, fraction in [("joint", 1.0), ("joint", 0.1), ("frozen-logistic", 1.0)]:
            runs.append({"config": config, "seed": seed, "fraction": fraction,
                         "n_train": int(3611 * fraction), "commit": "abc1234",
                         "dev_accuracy": acc - (0.1 if fraction < 1 else 0),
                         "dev_weighted_f1": acc, "dev_macro_f1": acc, "fit_seconds": 60.0,
                         "predict_posts_per_s": 30.0, "peak_rss_mb": 2048.0,
                         "machine": "test machine"})
    results.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    table = tmp_path / "docs" / "bench.md"
    table.parent.mkdir()
    assert mvsa.main(["--root", str(tmp_path), "--results", str(results),
                      "--table", str(table)]) == 0
    page = table.read_text()
    assert "| **joint**:" in page and "72.0 ± 2.8" in page  # mean ± std over the 2 seeds
    assert "| joint | 10% | 361 | 2 | 62.0 |" in page  # the learning-curve table
    assert "`benchmarks/configs.py`" in page
    # Ablation rows appear once both of their configurations ran, with the change of means.
    assert "| frozen | frozen-logistic |" not in page
    (tmp_path / "more.jsonl").write_text(results.read_text() + json.dumps(
        {**runs[0], "config": "frozen", "dev_accuracy": 0.65, "dev_weighted_f1": 0.60}) + "\n")
    assert mvsa.main(["--root", str(tmp_path), "--results", str(tmp_path / "more.jsonl"),
                      "--table", str(table)]) == 0
    page = table.read_text()
    assert "| frozen | joint | +7.0 | +12.0 |" in page
    assert "| frozen | frozen-logistic | +7.0 | +12.0 |" in page
    assert (table.parent / "img" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert mvsa.main(["--root", str(tmp_path), "--configs", "joint"]) == 2
    assert "MVSA-Single not found" in capsys.readouterr().err


def test_benchmark_modules_doctests_and_runner(tmp_path, benchmarks):
    import configs
    import report
    import runner

    for module in (configs, runner, report):
        assert doctest.testmod(module).failed == 0
    with pytest.raises(FileNotFoundError, match="MVSA-Single not found"):
        runner.run_benchmark(tmp_path, ["joint"], [0], [1.0], tmp_path / "r.jsonl")
    with pytest.raises(ValueError, match="unknown configuration"):
        runner.run_benchmark(tmp_path, ["nope"], [0], [1.0], tmp_path / "r.jsonl")


def test_benchmark_resumed_run_counts_the_earlier_epochs(tmp_path, benchmarks):
    from runner import checkpoint_folder, earlier_seconds

    folder = checkpoint_folder(tmp_path, "paper", 0, 1)
    assert folder == tmp_path / "paper-seed0-fraction1"
    assert earlier_seconds(folder) == 0.0  # nothing saved yet
    folder.mkdir()
    (folder / "history.json").write_text(json.dumps([{"epoch": 1, "dur": 400.5},
                                                     {"epoch": 2, "dur": 399.5}]))
    (folder / "fit.json").write_text(json.dumps({"fingerprint": "abc"}))
    assert earlier_seconds(folder) == 800.0  # an unfinished run: resumed, its time counts
    (folder / "fit.json").write_text(json.dumps({"fingerprint": "abc", "finished": True}))
    assert earlier_seconds(folder) == 0.0  # a finished fit starts over, from nothing


def test_benchmark_report_adds_the_lever_screen(tmp_path, benchmarks):
    from report import write_report

    results = tmp_path / "mvsa.jsonl"
    results.write_text(json.dumps({"config": "joint", "seed": 0, "n_train": 10, "commit": "c",
                                   "dev_accuracy": 0.7, "dev_weighted_f1": 0.7,
                                   "dev_macro_f1": 0.7, "fit_seconds": 1.0,
                                   "predict_posts_per_s": 1.0, "peak_rss_mb": 1.0,
                                   "machine": "m"}) + "\n")
    labels = [0, 1, 2, 0]
    # Each seed alone is right on half the posts; their mean probabilities on all four.
    seed0 = [[900, 50, 50], [50, 900, 50], [400, 350, 250], [300, 400, 300]]
    seed1 = [[300, 400, 300], [400, 300, 300], [0, 0, 1000], [1000, 0, 0]]
    screen = []
    for config, probas in [("default", [seed0, seed1]), ("ls0.1", [seed0, seed0, seed1])]:
        for seed, proba in enumerate(probas):
            screen.append({"config": config, "seed": seed, "dev_accuracy": 0.5,
                           "dev_weighted_f1": 0.4, "dev_macro_f1": 0.3, "fit_seconds": 60.0,
                           "device": "a GPU", "workers_sharing_device": 2,
                           "date": "2026-01-01", "commit": "abc", "dev_label_index": labels,
                           "dev_proba_permille": proba})
    (tmp_path / "screen.jsonl").write_text("\n".join(json.dumps(r) for r in screen) + "\n")
    table = tmp_path / "bench.md"
    write_report(results, table)
    page = table.read_text()
    assert "## Lever screen on a GPU" in page
    assert "on one a GPU (2 fits sharing it; 2026-01-01; commits abc)" in page
    assert "| **default** | the defaults of the time | 2 | 50.0 ± 0.0 | 40.0 ± 0.0 " \
           "| 30.0 ± 0.0 | - | 100.0 | - | 60 ± 0 |" in page
    # Three seeds (seed0 twice, then seed1): the pairs score 50, 100 and 100 (mean 83.3);
    # all three together are right on every post (e.g. the third: [267, 233, 500]).
    assert "| **ls0.1** | label smoothing 0.1 | 3 | 50.0 ± 0.0 | 40.0 ± 0.0 | 30.0 ± 0.0 " \
           "| +0.0 | 83.3 | 100.0 | 60 ± 0 |" in page
    assert "All 5 fitted models averaged together reach 100.0 % dev accuracy." in page


def test_outputs_are_never_replaced_without_force(files, tmp_path, capsys):
    folder, train, test, model = files
    mine = tmp_path / "mine.csv"
    mine.write_text("precious,data\n1,2\n")
    args = ["--finetune", "frozen", "--epochs", "1", "--verbose", "0"]
    assert main(["train", str(folder / "train.csv"), "-o", str(mine), *args]) == 1
    assert "ends in .safetensors" in capsys.readouterr().err
    assert mine.read_text() == "precious,data\n1,2\n"
    existing = tmp_path / "m.joblib"
    existing.write_bytes(b"old")
    assert main(["train", str(folder / "train.csv"), "-o", str(existing), *args]) == 1
    assert "--force" in capsys.readouterr().err and existing.read_bytes() == b"old"
    assert main(["train", str(folder / "train.csv"), "-o", str(existing), "--force",
                 *args]) == 0
    assert file_format(existing) == "pickle"
    assert main(["predict", str(model), str(folder / "test.parquet"), "-o", str(mine)]) == 1
    assert mine.read_text() == "precious,data\n1,2\n"
    assert main(["predict", str(model), str(folder / "test.parquet"), "-o", str(mine),
                 "--force"]) == 0
    assert len(pd.read_csv(mine)) == len(test)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_csv_cells_reading_na_stay_texts(tmp_path):
    (tmp_path / "posts.csv").write_text("text,image_path,label\nNA,,a\nnull,,b\n,,a\n")
    df = read_table(tmp_path / "posts.csv", "image_path")
    assert df["text"].tolist()[:2] == ["NA", "null"] and pd.isna(df["text"][2])


def test_version_and_python_dash_m():
    import subprocess
    import sys

    from mmsentiment import __version__

    done = subprocess.run([sys.executable, "-m", "mmsentiment", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"mmsentiment {__version__}"


def test_predict_to_stdout_with_run_settings(files, capsys, tmp_path):
    import io

    folder, _, test, model = files
    bad = test.copy()
    bad.loc[bad.index[0], "image_path"] = str(tmp_path / "gone.jpg")
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["predict", str(model), str(tmp_path / "bad.csv"), "-o", "-"]) == 1
    assert "could not be read" in capsys.readouterr().err
    assert main(["predict", str(model), str(tmp_path / "bad.csv"), "-o", "-",
                 "--on-bad-image", "blank", "--batch-size", "3", "--device", "cpu"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(out) == len(test) and {"prediction", "proba_positive"} <= set(out.columns)


def test_json_reports_and_unseen_labels_count_as_errors(files, capsys, tmp_path):
    import json

    folder, _, test, model = files
    odd = test.copy()
    odd.loc[odd.index[:2], "label"] = "sarcastic"
    odd.to_csv(tmp_path / "odd.csv", index=False)
    assert main(["evaluate", str(model), str(tmp_path / "odd.csv"), "--json"]) == 0
    captured = capsys.readouterr()
    scores = json.loads(captured.out)
    assert scores["posts"] == len(test) and scores["unseen_labels"] == ["sarcastic"]
    assert 0 <= scores["accuracy"] <= (len(test) - 2) / len(test)
    assert "sarcastic" in captured.err
    assert main(["validate", str(folder / "train.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["rows"] > 0


def test_validate_names_the_flags_for_missing_columns(tmp_path, capsys):
    from mmsentiment.datasets import DEMO_DIR

    assert main(["validate", str(DEMO_DIR / "posts.csv")]) == 1
    err = capsys.readouterr().err
    assert "--image-column" in err and "classifier" not in err
    assert main(["validate", str(DEMO_DIR / "posts.csv"), "--image-column", "image"]) == 0


def test_efficiency_page_shows_another_cpus_fits_and_the_onnx_lever(tmp_path, benchmarks):
    from efficiency import efficiency_lines

    def row(setting, fit, predict):
        return {"setting": setting, "fit": fit, "epoch": fit / 3, "predict": predict,
                "peak_mb": 2048.0}

    stamp = {"date": "2026-12-02", "commit": "abc1234", "torch_threads": 2,
             "baseline": "e9caf16", "n_posts": 320, "n_dev": 200}
    rows = [row("defaults at the baseline commit", 120.0, 20.0),
            row('full, precision="auto", torch prediction', 80.0, 46.0),
            row('full, precision="auto" (the defaults)', 80.0, 52.0)]
    results = {"efficiency_cpus": {"AMD EPYC (avx2)": {**stamp, "cpu": "AMD EPYC (avx2)",
                                                       "rows": rows}}}
    page = "\n".join(efficiency_lines(results, tmp_path / "none.jsonl"))
    assert "### The same fits on AMD EPYC (avx2)" in page
    assert "| full, precision=\"auto\" (the defaults) | 80 | 0.67 |" in page
    # The lever row: the defaults' throughput over torch prediction's, 52 / 46.
    assert "through ONNX Runtime in prediction" in page and "| 1.00 | 1.13 |" in page
    assert "predict at **2.60x** its throughput: the prediction target (3x) is not met" in page


def test_efficiency_page_names_a_bfloat16_cpus_precision_and_the_fit_verdict(tmp_path,
                                                                               benchmarks):
    from efficiency import efficiency_lines

    def row(setting, fit, predict, precision="Precision(name='bf16', text_only=False)"):
        return {"setting": setting, "fit": fit, "epoch": fit / 3, "predict": predict,
                "peak_mb": 2048.0, "precision": precision}

    stamp = {"date": "2026-12-08", "commit": "abc1234", "torch_threads": 2,
             "baseline": "e9caf16", "n_posts": 320, "n_dev": 200}
    cpu = "AMD EPYC (avx2, avx512f, avx512_bf16)"
    rows = [row("defaults at the baseline commit", 100.0, 20.0, "None"),
            row('full, precision="auto" (the defaults)', 70.0, 70.0),
            row("full, 160-pixel images", 50.0, 90.0)]
    training = {**stamp, "cpu": "Intel Xeon", "rows": [
        {"lever": "old lever", "posts": 160, "before": 2.0, "after": 1.0},
        {"lever": "new lever", "posts": 320, "before": 3.0, "after": 2.0,
         "date": "2026-12-08", "commit": "def5678", "cpu": cpu}]}
    results = {"efficiency_cpus": {cpu: {**stamp, "cpu": cpu, "rows": rows}},
               "training": training}
    page = "\n".join(efficiency_lines(results, tmp_path / "none.jsonl"))
    assert "Here precision=\"auto\" means bfloat16 in prediction and validation, and" in page
    assert "the prediction target (3x) is met with bfloat16 prediction" in page
    assert "full, 160-pixel images fits in 0.50x and predicts at 4.50x, not run on MVSA" in page
    assert "is met by neither" in page
    # Training rows measured elsewhere than their section say where.
    assert "| old lever | 160 |" in page
    assert f"| new lever (measured 2026-12-08, commit def5678, on {cpu}) | 320 |" in page
