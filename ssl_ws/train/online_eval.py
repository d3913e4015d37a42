"""Online evaluation of an encoder during training: weighted kNN and a linear probe.

Called at the end of a training epoch on embeddings of the training split (the
bank) and of the validation split (the queries):

* **weighted kNN** (Wu et al., CVPR 2018): embeddings are L2-normalized, a query
  takes its ``k`` most cosine-similar bank embeddings and class ``c`` scores
  ``sum_{j in N_k, y_j = c} exp(s_j / T)``; prediction ``argmax_c``. A chunked
  matrix product + ``topk`` in torch, on the embeddings' device.
* **linear probe**: scikit-learn's ``LogisticRegression`` on standardized
  embeddings, fitted on (at most ``max_train``) bank embeddings, scored on the
  validation embeddings -- the protocol of the final evaluation, kept small so it
  costs seconds per epoch.

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
                 temperature: float = 0.07, num_classes: Optional[int] = None, chunk: int = 1024) -> float:
    """Weighted kNN accuracy of ``queries`` against ``bank`` (see module docstring)."""
    bank = torch.nn.functional.normalize(bank.float(), dim=1)
    queries = torch.nn.functional.normalize(queries.float(), dim=1)
    bank_labels = bank_labels.to(bank.device).long()
    query_labels = query_labels.to(bank.device).long()
    c = int(num_classes or int(max(bank_labels.max(), query_labels.max())) + 1)
    k = min(int(k), len(bank))
    correct = 0
    for i in range(0, len(queries), chunk):
        q = queries[i : i + chunk].to(bank.device)
        sims, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(q), c, device=bank.device)
        votes.scatter_add_(1, bank_labels[idx], (sims / temperature).exp())
        correct += int((votes.argmax(1) == query_labels[i : i + chunk]).sum())
    return correct / max(len(queries), 1)


def probe_accuracy(train_z: np.ndarray, train_y: np.ndarray, test_z: np.ndarray, test_y: np.ndarray,
                   max_train: int = 5000, seed: int = 0, max_iter: int = 200) -> float:
    """Linear-probe accuracy: LogisticRegression fitted on (a subset of) ``train_z``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_z = np.asarray(train_z, dtype=np.float64)
    if len(train_z) > max_train:
        pick = np.random.default_rng(seed).choice(len(train_z), max_train, replace=False)
        train_z, train_y = train_z[pick], np.asarray(train_y)[pick]
    if len(np.unique(train_y)) < 2:
        return float(np.mean(np.asarray(test_y) == np.asarray(train_y)[0]))
    scaler = StandardScaler().fit(train_z)
    clf = LogisticRegression(max_iter=max_iter)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on tiny/odd data is not the user's concern here
        clf.fit(scaler.transform(train_z), train_y)
    return float(clf.score(scaler.transform(np.asarray(test_z, dtype=np.float64)), test_y))


def online_metrics(bank: Tensor, bank_y: Tensor, val: Tensor, val_y: Tensor, *, k: int, temperature: float,
                   num_classes: int, probe_max_train: int, seed: int = 0) -> Dict[str, float]:
    """``{"knn_acc", "probe_acc"}`` of validation embeddings against training embeddings."""
    out = {"knn_acc": knn_accuracy(bank, bank_y, val, val_y, k=k, temperature=temperature, num_classes=num_classes)}
    out["probe_acc"] = probe_accuracy(bank.cpu().numpy(), bank_y.cpu().numpy(), val.cpu().numpy(), val_y.cpu().numpy(),
                                      max_train=probe_max_train, seed=seed)
    return out
