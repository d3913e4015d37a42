"""Training: SimCLR pretraining and supervised training / fine-tuning on Lightning.

* :mod:`.simclr`: :class:`SimCLRModule` (encoder + lightly projection head + NT-Xent);
* :mod:`.supervised`: :class:`SupervisedModule` (encoder + linear head, MixUp soft labels,
  pretrained init with its own encoder learning-rate factor);
* :mod:`.objectives`: ``ssl.objective`` name -> LightningModule (:func:`register_objective`);
* :mod:`.datamodule`: :class:`INRDataModule` (store, training rows, sampler, resumable loader,
  the rows evaluated during training);
* :mod:`.callbacks`: evaluation during training (supervised accuracy and model selection;
  online kNN / linear probe via :mod:`.online_eval` and :mod:`ssl_ws.eval`);
* :mod:`.runs`: :func:`run_pretrain`, :func:`run_train` (run dirs, checkpoints, resume, results).
"""

from .runs import run_pretrain, run_train

__all__ = ["run_pretrain", "run_train"]
