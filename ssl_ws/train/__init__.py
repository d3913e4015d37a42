"""Training: SimCLR pretraining and supervised training / fine-tuning on Lightning.

* :mod:`.simclr`: :class:`SimCLRModule` (encoder + lightly projection head + NT-Xent);
* :mod:`.supervised`: :class:`SupervisedModule` (encoder + linear head, MixUp soft labels,
  pretrained init with its own encoder learning-rate factor);
* :mod:`.online_eval`: per-epoch kNN / linear-probe accuracy;
* :mod:`.runs`: :func:`run_pretrain`, :func:`run_train` (run dirs, checkpoints, resume, results).
"""

from .runs import run_pretrain, run_train

__all__ = ["run_pretrain", "run_train"]
