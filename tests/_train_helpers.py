"""Tiny INR stores and configs for the training tests (not a test module)."""

import numpy as np

from conftest import random_ws
from ssl_ws import INRSpec
from ssl_ws.config import load_config
from ssl_ws.data import write_store

SPEC = INRSpec((2, 8, 8, 1))


def tiny_store(path, n_obj=40, views=2, spec=SPEC, classes=4, seed=0):
    """``n_obj`` objects x ``views`` random SIREN-like fits; 24/8/8 object split; label = object % classes."""
    ws = random_ws(spec, n_obj * views, seed=seed)
    obj = np.repeat(np.arange(n_obj), views)
    n_tr, n_va = int(n_obj * 0.6), int(n_obj * 0.2)
    write_store(
        path,
        params=ws.to_flat().numpy(),
        labels=obj % classes,
        object_ids=obj,
        view_ids=np.tile(np.arange(views), n_obj),
        psnr=np.full(n_obj * views, 30.0, np.float32),
        splits={"train": list(range(n_tr)), "val": list(range(n_tr, n_tr + n_va)), "test": list(range(n_tr + n_va, n_obj))},
        meta={"spec": spec, "class_names": [f"c{i}" for i in range(classes)]},
    )
    return str(path)


def overrides(store, out, *extra):
    if any(e.startswith("encoder.name=") and e != "encoder.name=dwsnet" for e in extra):  # DWSNet-only options out
        base = [o for o in overrides(store, out) if not o.startswith(("encoder.num_heads", "encoder.head_hidden", "encoder.name"))]
        return base + list(extra)
    return [
        f"data.store={store}",
        f"output_dir={out}",
        "encoder.name=dwsnet",
        "encoder.hidden=4",
        "encoder.out_dim=8",
        "encoder.num_heads=2",
        "encoder.head_hidden=16",
        "data.batch_size=16",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "trainer.progress_bar=false",
        "augment.preset=paper",
        "ssl.proj_hidden=16",
        "ssl.proj_out=8",
        "ssl.positives=same_fit",
        *extra,
    ]


def cfg(kind, store, out, *extra):
    ov = overrides(store, out, *extra)
    if kind == "train":
        ov = [o for o in ov if not o.startswith("ssl.")]
    return load_config(kind, None, ov)
