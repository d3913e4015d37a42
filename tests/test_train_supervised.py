"""Supervised training: one epoch with aligned MixUp, results at the best val epoch, pretrained init."""

import json
import os

import numpy as np
import pytest
import torch

from _train_helpers import cfg, tiny_store
from ssl_ws.data import load_store
from ssl_ws.models import build_encoder
from ssl_ws.models.export import EmbeddingModel
from ssl_ws.models.normalize import WeightNormalizer
from ssl_ws.train.runs import run_train
from ssl_ws.train.supervised import SupervisedModule, soft_cross_entropy


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("sup") / "store")


def test_one_epoch_aligned_mixup_reports_test_at_best_val(store, tmp_path):
    res = run_train(cfg("train", store, tmp_path, "supervised.mixup=aligned", "trainer.max_epochs=2", "data.max_views=2"))
    saved = json.load(open(os.path.join(res["run_dir"], "results.json")))
    assert saved["global_step"] == 2 * (48 // 16)  # both views of every object are training samples
    best = max(saved["history"], key=lambda r: r["val_acc"])  # first best on ties
    assert saved["best_epoch"] == best["epoch"] and saved["test_acc"] == best["test_acc"]
    assert 0.0 <= saved["test_acc"] <= 1.0
    assert saved["train_acc"] == best["train_acc"] and 0.0 <= saved["train_acc"] <= 1.0
    assert os.path.exists(os.path.join(res["run_dir"], "checkpoints", "best.ckpt"))


def test_soft_cross_entropy_matches_hard_for_one_hot():
    logits = torch.randn(5, 3)
    y = torch.tensor([0, 2, 1, 1, 0])
    hard = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(soft_cross_entropy(logits, torch.nn.functional.one_hot(y, 3).float()), hard)
    mixed = 0.3 * torch.nn.functional.one_hot(y, 3).float() + 0.7 * torch.nn.functional.one_hot(y.flip(0), 3).float()
    expect = 0.3 * hard + 0.7 * torch.nn.functional.cross_entropy(logits, y.flip(0))
    assert torch.allclose(soft_cross_entropy(logits, mixed), expect, atol=1e-6)


def test_pretrained_init_and_encoder_lr_factor(store, tmp_path):
    st = load_store(store)
    enc = build_encoder("mlp", st.spec, hidden=8, out_dim=4)
    rows = st.rows("train")
    pre = EmbeddingModel(enc, WeightNormalizer.fit(st.weights(rows), st.spec), st.spec, enc.config)
    c = cfg("train", store, tmp_path, "optim.lr=0.01", "supervised.encoder_lr_factor=0.1")
    res = run_train(c, pretrained=pre)
    assert res["config"]["encoder"]["name"] == "mlp"  # the pretrained architecture wins over the config's
    # the module gives the encoder its own learning rate

    m = SupervisedModule(c, st.spec, enc, pre.normalizer, st.num_classes)
    groups = m.parameter_groups()
    assert groups[1]["lr_factor"] == 0.1 and sum(p.numel() for p in groups[1]["params"]) == sum(
        p.numel() for p in enc.parameters())
    frozen = SupervisedModule(c, st.spec, enc, pre.normalizer, st.num_classes, encoder_lr_factor=0.0)
    assert len(frozen.parameter_groups()) == 1 and not any(p.requires_grad for p in enc.parameters())


def test_clean_train_accuracy_scores_one_unaugmented_view_per_object(store):
    from ssl_ws.train.runs import _train_eval_rows

    store = load_store(store)
    train = store.rows("train")
    rows = _train_eval_rows(store, train, max_views=1, seed=0)
    assert len(rows) == len(np.unique(store.object_ids[rows])) == len(np.unique(store.object_ids[train]))
    half = train[: len(train) // 2]  # a few-label subset restricts it
    assert set(_train_eval_rows(store, half, 1, 0)) <= set(half)


def test_default_dwsnet_fits_its_training_set(store, tmp_path):
    """The convergence contract of issue 12: with the default encoder (BatchNorm) and no
    augmentation, a supervised DWSNet memorizes a tiny store with arbitrary labels."""
    res = run_train(cfg("train", store, tmp_path, "encoder.hidden=8", "encoder.out_dim=16", "augment.preset=none",
                        "supervised.mixup=none", "optim.lr=0.005", "trainer.max_steps=80", "eval.every_n_steps=40",
                        "data.eval_max_views=2"))
    assert res["global_step"] == 80  # max_steps, not epochs, ends the run (mid-epoch)
    assert [r["step"] for r in res["history"]] == [42, 80]  # first epoch end after 40 steps, then the last step
    assert res["history"][-1]["train_acc"] >= 0.95
    losses = [r["train_loss"] for r in res["history"]]  # mean loss since the previous evaluation
    assert losses[1] < losses[0]


def test_objects_per_class_is_a_nested_stratified_subset(store, tmp_path):
    from ssl_ws.train.runs import training_rows

    st = load_store(store)
    rows = {k: training_rows(st, cfg("train", store, tmp_path, f"data.objects_per_class={k}")) for k in (2, 4)}
    full = training_rows(st, cfg("train", store, tmp_path))
    for k, r in rows.items():
        objs, first = np.unique(st.object_ids[r], return_index=True)
        assert np.bincount(st.labels[r][first], minlength=4).tolist() == [k] * 4  # k objects of every class
        assert np.isin(st.object_ids[full], objs).sum() == r.size  # every view of a chosen object
    assert set(rows[2]) <= set(rows[4])  # nested: a learning curve's subsets grow
    res = run_train(cfg("train", store, tmp_path, "data.objects_per_class=2", "data.max_views=2"))
    assert res["global_step"] == -(-2 * 4 * 2 // 16)  # 8 objects x 2 views, batch 16


def test_pixel_encoder_trains_with_the_store_image_size(tmp_path):
    """`encoder.name=pixels-cnn` over a config written for the DWSNet: the DWSNet's options are
    dropped, the render takes the store's image size, and the same training code runs."""
    import json as _json

    path = tiny_store(tmp_path / "st", n_obj=20, views=1)
    meta = _json.load(open(os.path.join(path, "meta.json")))
    meta["image_size"] = [6, 5]
    _json.dump(meta, open(os.path.join(path, "meta.json"), "w"))
    from ssl_ws.config import load_config

    yaml = tmp_path / "dws.yaml"
    yaml.write_text("encoder:\n  name: dwsnet\n  hidden: 4\n  norm: batch\n")
    c = load_config("train", str(yaml), [f"data.store={path}", f"output_dir={tmp_path}", "encoder.name=pixels-cnn",
                                         "augment.preset=none", "supervised.mixup=none", "trainer.max_steps=3",
                                         "data.batch_size=4", "trainer.progress_bar=false", "trainer.accelerator=cpu"])
    res = run_train(c)
    assert res["config"]["encoder"]["name"] == "pixels-cnn"
    from ssl_ws.models.export import load_encoder

    model = load_encoder(res["best_checkpoint"])
    assert model.encoder.image_size == (6, 5) and model.encoder_config["image_size"] == [6, 5]


def test_normalize_false_trains_on_raw_weights(store, tmp_path):
    from ssl_ws.models.export import load_encoder

    res = run_train(cfg("train", store, tmp_path, "data.normalize=false", "trainer.max_steps=2", "augment.preset=none",
                        "supervised.mixup=none"))
    norm = load_encoder(res["best_checkpoint"]).normalizer
    assert all(float(m.abs().max()) == 0 for m in norm.w_mean) and all(float((s - 1).abs().max()) == 0 for s in norm.w_std)


def test_a_fine_tune_of_a_non_dwsnet_encoder_resumes(tmp_path):
    """The resume checkpoint is checked against the encoder the run has -- the pretrained one -- not against
    the config's default encoder (which a fine-tune replaces)."""
    from ssl_ws.config import load_config
    from ssl_ws.train.runs import run_pretrain
    from test_train_simclr import StopAfterEpochs

    store = tiny_store(tmp_path / "store")
    pre = run_pretrain(cfg("pretrain", store, tmp_path / "pre", "encoder.name=mlp", "encoder.hidden=8"))
    first = run_train(cfg("train", store, tmp_path / "ft", f"supervised.pretrained={pre['last_checkpoint']}",
                          "trainer.max_epochs=2"), callbacks=[StopAfterEpochs(1)])
    resumed = run_train(load_config("train", os.path.join(first["run_dir"], "config.yaml")), resume=first["run_dir"])
    assert resumed["global_step"] == 2 * first["global_step"] and resumed["config"]["encoder"]["name"] == "mlp"
