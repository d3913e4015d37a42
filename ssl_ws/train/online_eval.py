"""Online evaluation of an encoder during training: weighted kNN and a linear probe.

Called at the end of a training epoch on embeddings of the training split (the
bank) and of the validation split (the queries):

* **weighted kNN** (Wu et al., CVPR 2018): embeddings are L2-normalized, a query
  takes its ``k`` most cosine-similar bank embeddings and class ``c`` scores
  ``sum_{j in N_k, y_j = c} exp(s_j / T)``; prediction ``argmax_c``. The same function
  as ``ssl-ws knn`` (:mod:`ssl_ws.eval.knn`), searched in torch on the embeddings' device.
* **linear probe**: the probe of ``ssl-ws linear-probe`` (:mod:`ssl_ws.eval.linear_probe`:
  standardized embeddings, L-BFGS with one BLAS thread) at ``C = 1``, fitted on (at most
  ``max_train``) bank embeddings, scored on the validation embeddings -- the protocol of
  the final evaluation, kept small so it costs seconds per evaluation.

Both give accuracies in [0, 1]; the trainer logs them as ``online/knn_acc`` and
``online/probe_acc`` next to the loss.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor


@torch.no_grad()
def knn_accuracy(bank: Tensor, bank_labels: Tensor, queries: Tensor, query_labels: Tensor, k: int = 20,
                 temperature: float = 0.07, num_classes: Optional[int] = None) -> float:
    """Weighted kNN accuracy of ``queries`` against ``bank``: the package's one kNN classifier
    (:func:`ssl_ws.eval.knn.knn_predict`, exact search in torch on the embeddings' device)."""
    from ..eval.knn import knn_predict

    bank_y = bank_labels.cpu().numpy()
    query_y = query_labels.cpu().numpy()
    c = int(num_classes or int(max(bank_y.max(), query_y.max())) + 1)
    pred = knn_predict(bank.float().cpu().numpy(), bank_y, queries.float().cpu().numpy(), k=int(k),
                       temperature=float(temperature), num_classes=c, backend="torch", device=bank.device)
    return float(np.mean(pred == query_y)) if len(query_y) else 0.0


def probe_accuracy(train_z: np.ndarray, train_y: np.ndarray, test_z: np.ndarray, test_y: np.ndarray,
                   max_train: int = 5000, seed: int = 0, max_iter: int = 200) -> float:
    """Linear-probe accuracy: the package's probe (:func:`ssl_ws.eval.linear_probe.linear_probe`,
    standardized features, one BLAS thread) with ``C = 1``, fitted on (at most ``max_train``
    rows of) ``train_z``."""
    from ..eval.linear_probe import linear_probe

    train_z = np.asarray(train_z, dtype=np.float64)
    train_y = np.asarray(train_y)
    if len(train_z) > max_train:
        pick = np.random.default_rng(seed).choice(len(train_z), max_train, replace=False)
        train_z, train_y = train_z[pick], train_y[pick]
    if len(np.unique(train_y)) < 2:
        return float(np.mean(np.asarray(test_y) == train_y[0]))
    res = linear_probe(train_z, train_y, None, None, np.asarray(test_z, dtype=np.float64), test_y, cs=(1.0,),
                       max_iter=max_iter, seed=seed)
    return float(res["top1"])


def online_metrics(bank: Tensor, bank_y: Tensor, val: Tensor, val_y: Tensor, *, k: int, temperature: float,
                   num_classes: int, probe_max_train: int, seed: int = 0) -> Dict[str, float]:
    """``{"knn_acc", "probe_acc"}`` of validation embeddings against training embeddings."""
    out = {"knn_acc": knn_accuracy(bank, bank_y, val, val_y, k=k, temperature=temperature, num_classes=num_classes)}
    out["probe_acc"] = probe_accuracy(bank.cpu().numpy(), bank_y.cpu().numpy(), val.cpu().numpy(), val_y.cpu().numpy(),
                                      max_train=probe_max_train, seed=seed)
    return out
