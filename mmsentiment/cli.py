"""The ``mmsentiment`` command: train, predict, evaluate, validate, cache, serve, demo.

Data files are CSV (``.csv``, ``.tsv``), Parquet (``.parquet``, ``.pq``) or JSON Lines
(``.jsonl``, ``.ndjson``; ``.json`` is read as a JSON array) with a text column and an image
column; relative image paths are read relative to the data file's folder. Models are written
as one safetensors file (``.safetensors``, no code runs on load) or a joblib pickle
(``.joblib`` / ``.pkl``), never over an existing file without ``--force``. A model file's
kind is told from its content; pickles load only with ``--allow-pickle`` (a pickle runs code
when loaded).

``train`` takes every parameter of `MultimodalSentimentClassifier` as an option of its own,
generated from the estimator (`mmsentiment.cli_options`), so the command cannot fall behind
the estimator.

Exit codes: 0 success, 1 an error (one readable line on stderr; ``--debug`` shows the
traceback), 2 a usage error, 3 ``validate`` found errors in the data, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .cli_files import CLIError, load_model, read_table, save_figure, save_model, write_table
from .cli_options import estimator_params, parse_param, train_options
from .serve import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_POSTS
from .version import __version__

EXIT_ERROR, EXIT_USAGE, EXIT_INVALID, EXIT_INTERRUPTED = 1, 2, 3, 130






# ---------------------------------------------------------------------------- files
def _columns(df, args, need_label: bool):
    wanted = [args.text_column, args.image_column] + ([args.label_column] if need_label else [])
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise CLIError(f"the data lacks column(s) {missing}; it has {list(df.columns)} "
                       "(set --text-column / --image-column / --label-column)")
    X = df[[args.text_column, args.image_column]]
    return (X, df[args.label_column].to_numpy()) if need_label else (X, None)


# ---------------------------------------------------------------------------- commands
def _train(args: argparse.Namespace) -> int:
    from .classifier import MultimodalSentimentClassifier

    clf = MultimodalSentimentClassifier(**estimator_params(args))
    df = read_table(args.data, clf.image_column)
    args.text_column, args.image_column = clf.text_column, clf.image_column
    X, y = _columns(df, args, need_label=True)
    start = time.perf_counter()
    clf.fit(X, y)
    out = save_model(clf, args.output, force=args.force)
    print(f"Trained on {len(X)} posts in {time.perf_counter() - start:.0f} s "
          f"({len(clf.history_)} epochs); saved the model to {out}")
    if clf.interrupted_:
        print("mmsentiment train: interrupted; the saved model holds the best epoch so far "
              "(rerun with --checkpoint-dir to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.plot:
        from .plots import plot_training_curves

        save_figure(plot_training_curves(clf), args.plot, force=args.force)
        print(f"Training curves: {args.plot}")
    return 0


def _model_and_data(args: argparse.Namespace, need_label: bool):
    """The saved model, and the data file's posts in the columns it was trained on."""
    clf = load_model(args.model, allow_pickle=args.allow_pickle,
                     trust_encoders=args.trust_encoders)
    df = read_table(args.data, clf.image_column)
    args.text_column, args.image_column = clf.text_column, clf.image_column
    return (clf, *_columns(df, args, need_label=need_label))


def _predict(args: argparse.Namespace) -> int:
    clf, X, _ = _model_and_data(args, need_label=False)
    settings = {k: v for k, v in (("batch_size", args.batch_size), ("device", args.device),
                                  ("on_bad_image", args.on_bad_image)) if v is not None}
    if settings:  # the same trained network, run with other settings
        from .training import resolve_device

        clf.set_params(**settings)
        clf.attach_module(clf.net_.module_, resolve_device(clf.device))
    proba = clf.predict_proba(X)
    out = read_table(args.data)  # the input as it was, image paths not made absolute
    out["prediction"] = clf.classes_[proba.argmax(axis=1)]
    for j, label in enumerate(clf.classes_):
        out[f"proba_{label}"] = proba[:, j]
    if args.output == "-":
        out.to_csv(sys.stdout, index=False)
        return 0
    path = write_table(out, args.output, force=args.force)
    print(f"Wrote {len(out)} predictions to {path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    clf, X, y = _model_and_data(args, need_label=True)
    unseen = sorted(set(map(str, y)) - set(map(str, clf.classes_)))
    if unseen:  # counted wrong, as score() counts them
        print(f"mmsentiment evaluate: labels {unseen} were not seen in training (the model "
              f"knows {list(clf.classes_)}); their posts count as errors", file=sys.stderr)
    pred = clf.predict(X)
    scores = {"posts": len(y), "accuracy": accuracy_score(y, pred),
              "weighted_f1": f1_score(y, pred, average="weighted", zero_division=0),
              "macro_f1": f1_score(y, pred, average="macro", zero_division=0)}
    if args.json:
        report = classification_report(y, pred, zero_division=0, output_dict=True)
        print(json.dumps({**scores, "report": report, "unseen_labels": unseen}))
    else:
        print(f"{len(y)} posts: accuracy {scores['accuracy']:.4f}, weighted F1 "
              f"{scores['weighted_f1']:.4f}, macro F1 {scores['macro_f1']:.4f}")
        print(classification_report(y, pred, digits=4, zero_division=0))
    if args.confusion_matrix:
        from .plots import plot_confusion_matrix

        save_figure(plot_confusion_matrix(y, pred, labels=list(clf.classes_)),
                    args.confusion_matrix, force=args.force)
        print(f"Confusion matrix: {args.confusion_matrix}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .validation import validate

    df = read_table(args.data, args.image_column)
    _columns(df, args, need_label=False)  # missing columns: name the flags that fix it
    y = df[args.label_column] if args.label_column in df.columns else None
    report = validate(df, y, text_column=args.text_column, image_column=args.image_column,
                      check_images=not args.skip_images)
    if args.json:
        print(json.dumps({"ok": report.ok, "rows": report.n_rows,
                          "problems": report.to_frame().to_dict(orient="records")},
                         default=str))
    else:
        print(report)
    return 0 if report.ok else EXIT_INVALID


def _cache(args: argparse.Namespace) -> int:
    from .inputs.cache import cache_info, clear, max_cache_bytes, prune, resolve_cache_dir

    root = resolve_cache_dir(args.dir)
    if args.action == "clear":
        print(f"Removed {clear(root) / 1e6:.1f} MB from {root}")
    elif args.action == "prune":
        limit = max_cache_bytes() if args.max_size is None else args.max_size
        print(f"Removed {prune(root, limit) / 1e6:.1f} MB from {root} "
              f"(cap {limit / 1e6:.0f} MB)")
    info = cache_info(root)
    print(f"{info['root']}: {info['entries']} entries, {info['bytes'] / 1e6:.1f} MB")
    for name, folder in info["folders"].items():
        print(f"  {name}: {folder['entries']} entries, {folder['bytes'] / 1e6:.1f} MB"
              f"{'' if folder['layout'] == 'current' else ' (old layout: prune removes it)'}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from . import serve
    from .training import resolve_device

    try:
        serve.require_fastapi()
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    clf = load_model(args.model, allow_pickle=args.allow_pickle,
                     trust_encoders=args.trust_encoders)
    cache_dir = None if args.cache_dir.lower() == "none" else args.cache_dir
    clf.set_params(cache_dir=cache_dir, **({"device": args.device} if args.device else {}))
    clf.attach_module(clf.net_.module_, resolve_device(clf.device))
    app = serve.create_app(clf, image_root=args.image_root, allow_urls=args.allow_urls,
                           on_bad_image=args.on_bad_image, max_body_bytes=args.max_body_bytes,
                           max_posts=args.max_posts, max_image_bytes=args.max_image_bytes)
    print(f"Serving {args.model} (classes {list(clf.classes_)}) at http://{args.host}:"
          f"{args.port}: image_path {'beneath ' + args.image_root if args.image_root else 'off'},"
          f" image_url {'on' if args.allow_urls else 'off'}, image_base64 on", file=sys.stderr)
    serve.run(app, host=args.host, port=args.port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from sklearn.metrics import accuracy_score, classification_report, f1_score
    from sklearn.model_selection import train_test_split

    from . import MultimodalSentimentClassifier, load_demo

    start = time.perf_counter()
    X, y = load_demo(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    print(f"Demo set: {len(X)} synthetic posts (made by the project, see "
          f"mmsentiment.load_demo); training on {len(X_train)}, testing on {len(X_test)}.")
    clf = MultimodalSentimentClassifier(max_epochs=args.epochs, random_state=0,
                                        verbose=args.verbose)
    print(f"Fine-tuning {clf.text_encoder} + {clf.image_encoder} jointly "
          f"({clf.fusion} fusion, {clf.max_epochs} epochs) ...", flush=True)
    clf.fit(X_train, y_train)
    pred = clf.predict(X_test)
    print(f"Held-out accuracy {accuracy_score(y_test, pred):.3f}, weighted F1 "
          f"{f1_score(y_test, pred, average='weighted', zero_division=0):.3f}")
    print(classification_report(y_test, pred, digits=3, zero_division=0))
    out = Path(args.output) if args.output else Path(tempfile.mkdtemp()) / "demo.joblib"
    out = save_model(clf, out, force=args.force)
    loaded = load_model(out, allow_pickle=True)  # the pickle this command just wrote
    sample = X_test.iloc[:3]
    for (text, _), label, proba in zip(sample.itertuples(index=False),
                                       loaded.predict(sample), loaded.predict_proba(sample)):
        print(f"  {text[:45]!r:48} -> {label} (p={proba.max():.2f})")
    print(f"Saved the model to {out} and predicted with the reloaded copy. "
          f"Total {time.perf_counter() - start:.0f} s.")
    return 0


# ---------------------------------------------------------------------------- parser
def _model_trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a joblib pickle (it runs code when loaded: only files you "
                             "trust)")
    parser.add_argument("--trust-encoders", action="store_true",
                        help="let a .safetensors file name encoders that are not installed "
                             "offline (may download or read local files)")


def _data_columns(parser: argparse.ArgumentParser, label: bool = True) -> None:
    parser.add_argument("--text-column", default="text", help="text column (default: text)")
    parser.add_argument("--image-column", default="image_path",
                        help="image path column (default: image_path)")
    if label:
        parser.add_argument("--label-column", default="label",
                            help="label column (default: label)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mmsentiment`` command.

    The ``train`` subcommand gets one option per estimator parameter (`train_options`).

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="mmsentiment",
        description="Multimodal (text + image) sentiment classification from the shell. "
                    "Data: CSV, Parquet or JSON Lines with a text and an image-path column.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage error, 3 validate found errors, "
               "130 interrupted.")
    parser.add_argument("--version", action="version", version=f"mmsentiment {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", help="fit a model on a labelled data file and save it",
        usage="%(prog)s DATA -o MODEL [options]",
        description="Fit MultimodalSentimentClassifier on a data file. Every parameter of "
                    "the estimator is an option; --param KEY=VALUE sets any of them too.")
    train.add_argument("data", help="CSV / Parquet / JSON Lines file")
    train.add_argument("-o", "--output", required=True,
                       help="model file: .safetensors (safe to share) or .joblib / .pkl "
                            "(a pickle); or a model folder for the Hugging Face hub (a "
                            "path without a suffix)")
    train.add_argument("--force", action="store_true",
                       help="replace an existing file (or the model in a model folder)")
    train.add_argument("--label-column", default="label", help="label column (default: label)")
    train.add_argument("--plot", help="write the training curves to this PNG")
    train.add_argument("--param", dest="param_overrides", action="append", type=parse_param,
                       metavar="KEY=VALUE",
                       help="set any estimator parameter, e.g. --param fusion=attention "
                            "(repeatable; overrides the options below)")
    group = train.add_argument_group(
        "estimator parameters",
        "MultimodalSentimentClassifier's parameters (its docstring says more); a value "
        "'none' is None")
    for option in train_options():
        group.add_argument(*option.flags, dest=option.name, default=option.default,
                           type=option.parse, choices=option.closed_choices,
                           metavar=option.metavar, help=option.help)
    train.set_defaults(func=_train)

    predict = sub.add_parser("predict", help="write predictions and class probabilities",
                             description="Predict with a saved model; the output holds the "
                                         "input columns, 'prediction' and one 'proba_<class>' "
                                         "column per class.")
    predict.add_argument("model", help="a model file or folder written by 'train'")
    _model_trust(predict)
    predict.add_argument("data", help="CSV / Parquet / JSON Lines file")
    predict.add_argument("-o", "--output", required=True,
                         help="output file (.csv, .parquet or .jsonl), or - for CSV on "
                              "standard output")
    predict.add_argument("--force", action="store_true", help="replace an existing file")
    predict.add_argument("--batch-size", type=int, help="posts per batch (default: the "
                                                        "model's)")
    predict.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the model's)")
    predict.add_argument("--on-bad-image", choices=["raise", "blank"],
                         help="unreadable images: fail naming them, or predict without them "
                              "(default: the model's)")
    predict.set_defaults(func=_predict)

    evaluate = sub.add_parser("evaluate", help="classification report (+ confusion matrix PNG)",
                              description="Score a saved model on a labelled data file.")
    evaluate.add_argument("model", help="a model file or folder written by 'train'")
    _model_trust(evaluate)
    evaluate.add_argument("data", help="CSV / Parquet / JSON Lines file with labels")
    evaluate.add_argument("--label-column", default="label")
    evaluate.add_argument("--confusion-matrix", help="write the confusion matrix to this PNG")
    evaluate.add_argument("--force", action="store_true", help="replace an existing PNG")
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
    evaluate.set_defaults(func=_evaluate)

    check = sub.add_parser("validate", help="check a data file without training",
                           description="Report every problem in a data file at once "
                                       "(exit code 3 when any would stop a fit).")
    check.add_argument("data", help="CSV / Parquet / JSON Lines file")
    _data_columns(check)
    check.add_argument("--skip-images", action="store_true", help="do not open the images")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=_validate)

    cache = sub.add_parser("cache", help="the feature cache: info, clear or prune",
                           description="Show, empty or shrink the on-disk cache of encoder "
                                       "outputs (prune: old layouts, then the oldest entries "
                                       "beyond the size cap).")
    cache.add_argument("action", choices=["info", "clear", "prune"])
    cache.add_argument("--dir", default="auto", help="the cache folder (default: the "
                                                      "per-user one)")
    cache.add_argument("--max-size", type=int, help="prune to this many bytes (default: "
                                                    "$MMSENTIMENT_CACHE_MAX_BYTES or 10 GiB)")
    cache.set_defaults(func=_cache)

    srv = sub.add_parser("serve", help="an HTTP server for a saved model (POST /predict)",
                         description="Serve a model over HTTP: POST /predict takes a JSON list "
                                     "of posts, GET /health describes the model. Needs "
                                     "the 'serve' extra (FastAPI and uvicorn).")
    srv.add_argument("model", help="a model file written by 'train'")
    _model_trust(srv)
    srv.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    srv.add_argument("--image-root", help="accept image_path fields, read beneath this folder")
    srv.add_argument("--allow-urls", action="store_true",
                     help="accept image_url fields: the server downloads http(s) URLs")
    srv.add_argument("--on-bad-image", choices=["raise", "blank"], default="raise",
                     help="unreadable images: answer 422 naming the posts (default), or "
                          "predict those posts without their image")
    srv.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                     help="largest request body (default 16 MiB; 413 beyond)")
    srv.add_argument("--max-posts", type=int, default=DEFAULT_MAX_POSTS,
                     help="most posts per request (default 256; 413 beyond)")
    srv.add_argument("--max-image-bytes", type=int,
                     help="largest image, downloaded or decoded (default 64 MiB)")
    srv.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the model's)")
    srv.add_argument("--cache-dir", default="none",
                     help="feature cache of frozen models: a folder, 'auto' (the per-user "
                          "one) or 'none' (default: no features of requests are kept)")
    srv.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="train on the built-in demo set, evaluate, save, "
                                       "reload and predict (offline, about a minute)")
    demo.add_argument("--epochs", type=int, default=4, help="training epochs (default 4)")
    demo.add_argument("--output", help="where to save the model: .joblib, .pkl, "
                                       ".safetensors or a model folder (default: a temp "
                                       "folder)")
    demo.add_argument("--force", action="store_true", help="replace an existing file")
    demo.add_argument("--verbose", type=int, default=1, help="0 hides the progress bars")
    demo.set_defaults(func=_demo)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mmsentiment`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0, 1 (an error), 3 (``validate`` found errors) or 130 (interrupted).
        Usage errors exit with 2 through ``SystemExit``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("mmsentiment: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into a line
        if args.debug:
            traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        kind = "" if isinstance(exc, CLIError) else f"{type(exc).__name__}: "
        print(f"mmsentiment {args.command}: error: {kind}{message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
