"""Results files: every evaluation writes its numbers with the exact config.

A results JSON holds ``{"command", "results", "config", "encoder", "store",
"environment", "created"}``: the numbers, every option that produced them, the
encoder's identity digest and path, the store's path and size, and the library
versions -- enough to reproduce or to compare runs.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from typing import Dict, Optional

from ..atomic import atomic_write


def environment() -> Dict:
    import numpy
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    try:
        from .. import __version__

        env["ssl_ws"] = __version__
    except ImportError:  # pragma: no cover
        pass
    for mod in ("sklearn", "faiss"):
        try:
            env[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            env[mod] = None
    return env


def encoder_info(model, path: Optional[str] = None) -> Dict:
    return {
        "identity": getattr(model, "identity", None),
        "path": os.path.abspath(path) if path else None,
        "config": dict(getattr(model, "encoder_config", {}) or {}),
        "out_dim": int(getattr(model, "out_dim", 0) or 0),
    }


def store_info(store, path: Optional[str] = None) -> Dict:
    return {
        "path": os.path.abspath(path) if path else None,
        "rows": int(store.params.shape[0]),
        "spec": store.spec.to_dict(),
        "num_classes": int(store.num_classes),
        "image_size": list(getattr(store, "image_size", ()) or ()),
    }


def write_results(path: str, command: str, results: Dict, config: Dict, **extra) -> str:
    """Write the results JSON atomically and return its path."""
    payload = {"command": command, "results": results, "config": config}
    payload.update(extra)
    payload["environment"] = environment()
    payload["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    path = os.path.abspath(path)
    with atomic_write(path) as f:
        json.dump(payload, f, indent=2, default=str)
        f.write("\n")
    return path
