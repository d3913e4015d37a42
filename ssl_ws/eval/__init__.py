"""Evaluation of frozen weight-space embeddings (retrieval: :mod:`ssl_ws.retrieve`).

* :mod:`.embed` -- embeddings of a store split (batched, any device);
* :mod:`.linear_probe` -- logistic regression on standardized embeddings, C chosen on val;
* :mod:`.baselines` -- the same INRs without a weight-space model: LR on raw weights, LR and a CNN on renders;
* :mod:`.knn` -- weighted kNN (faiss, pure-torch fallback);
* :mod:`.few_labels` -- N labelled objects per class;
* :mod:`.results` -- results JSON files.
"""

from .baselines import run_baselines
from ..devices import resolve_device
from .embed import Embeddings, embed_rows, embed_split, embed_weights
from .few_labels import parse_labels_per_class, sample_per_class
from .knn import knn_evaluate, knn_predict, knn_predict_many, l2_normalize, weighted_vote
from .linear_probe import linear_probe

__all__ = [
    "Embeddings",
    "embed_rows",
    "embed_split",
    "embed_weights",
    "knn_evaluate",
    "knn_predict",
    "knn_predict_many",
    "l2_normalize",
    "linear_probe",
    "parse_labels_per_class",
    "resolve_device",
    "run_baselines",
    "sample_per_class",
    "weighted_vote",
]
