"""Data-parallel fine-tuning with Hugging Face accelerate: one process per GPU.

    accelerate launch --num_processes 4 examples/multi_gpu_accelerate.py    # 4 GPUs
    torchrun --standalone --nproc_per_node 2 examples/multi_gpu_accelerate.py    # no GPU

Install accelerate first (``pip install accelerate``, or ``pip install -e ".[accelerate]"``
in a checkout). With ``device="accelerate"`` each process trains on every N-th batch of one
shuffled order, gradients are averaged across processes
after each batch, and every process ends with the same weights; validation and prediction
run on all rows in every process. Without GPUs the processes train on the CPU and talk over
gloo on loopback: that form runs anywhere, and the test suite runs it. Each process prints
one line; the main process writes the model.
"""

import argparse
import hashlib

import joblib
from accelerate import PartialState

from mmsentiment import MultimodalSentimentClassifier, load_demo


def weights_digest(clf: MultimodalSentimentClassifier) -> str:
    digest = hashlib.sha256()
    for tensor in clf.net_.module_.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="posts per batch per process")
    parser.add_argument("--finetune", default="full", choices=["full", "top", "frozen"])
    parser.add_argument("--precision", default="32", choices=["32", "bf16", "fp16"])
    parser.add_argument("--seed", type=int, default=None, help="random_state (default: none)")
    parser.add_argument("--out", default="accelerate-model.joblib")
    args = parser.parse_args()

    X, y = load_demo(return_X_y=True)
    clf = MultimodalSentimentClassifier(device="accelerate", finetune=args.finetune,
                                        max_epochs=args.epochs, batch_size=args.batch_size,
                                        precision=args.precision, random_state=args.seed)
    clf.fit(X, y)
    state = PartialState()  # the processes' layout, as fit's accelerator set it up
    batches = clf.history_[-1, "train_batch_count"]
    valid_acc = clf.history_[-1, "valid_acc"]  # the same validation rows in every process
    accuracy = clf.score(X, y)
    print(f"process {state.process_index} of {state.num_processes} on {state.device}: "
          f"{batches} training batches per epoch, weights {weights_digest(clf)}, "
          f"validation accuracy {valid_acc:.4f}, accuracy on the demo set {accuracy:.3f}",
          flush=True)
    if state.is_main_process:
        joblib.dump(clf, args.out)
        print(f"model written to {args.out}")


if __name__ == "__main__":
    main()
