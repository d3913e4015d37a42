"""Few-label evaluation: a labelled training subset of N objects per class.

Label efficiency is what pretraining is for (SimCLR, Chen et al. 2020, Sec. 7
evaluates with 1% / 10% of the labels), so every evaluator can restrict its
labelled training set. The subset is drawn **by object**: for every class ``c``,
``N`` distinct objects (images) of class ``c`` are drawn uniformly without
replacement with a fixed seed, and every row (every INR view) of those objects is
kept -- views of one image are not independent labels. A class with fewer than
``N`` objects keeps all of them; an ``N`` above every class's count is refused (it would be
"all" under another name). The draw depends only on the seed and on the set
of (object, label) pairs, not on row order or on the encoder, so every encoder is
evaluated on the same labelled subset.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from ..data.store import sample_per_class  # noqa: F401 (the draw itself lives with the store)
from ..errors import SslWsError


def parse_labels_per_class(value: Union[str, int, None]) -> Optional[int]:
    """``"all"``/None -> None (every label), else a positive int."""
    if value is None or (isinstance(value, str) and value.lower() == "all"):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise SslWsError(f"--labels-per-class must be a positive integer or 'all', got {value!r}") from None
    if n < 1:
        raise SslWsError(f"--labels-per-class must be a positive integer or 'all', got {value!r}")
    return n
