"""`ssl-ws finetune` defaults: the head learns at 1e-2 with standardized features, and the
augmentation preset comes from the pretrained encoder's own config unless the user sets one."""

import json

import pytest
import torch

from ssl_ws import WeightNormalizer
from ssl_ws.cli import main
from ssl_ws.models import build_encoder
from ssl_ws.models.export import EmbeddingModel, save_encoder
from ssl_ws.train.finetune import finetune_config

from test_eval_commands import SPEC, toy_store


def _encoder(path, config):
    torch.manual_seed(0)
    enc = build_encoder("dwsnet", SPEC, hidden=8, n_layers=2, out_dim=16, num_heads=2)
    model = EmbeddingModel(enc, WeightNormalizer.identity(SPEC), SPEC, dict(enc.config))
    save_encoder(model, path, config=config)
    return str(path)


def _finetune(tmp_path, ckpt, store, *extra):
    out = tmp_path / "ft.json"
    assert main(["finetune", ckpt, store, "trainer.max_epochs=1", "data.batch_size=6", "trainer.accelerator=cpu",
                 "trainer.progress_bar=false", f"output_dir={tmp_path / 'runs'}", *extra, "--out", str(out)]) == 0
    return json.load(open(out))["config"]["train_config"]


def test_finetune_inherits_the_pretraining_preset_and_uses_head_lr(tmp_path):
    store = toy_store(tmp_path / "store")
    ckpt = _encoder(tmp_path / "enc.pt", config={"augment": {"preset": "symmetry"}})
    cfg = _finetune(tmp_path, ckpt, store)
    assert cfg["augment"]["preset"] == "symmetry"
    assert cfg["optim"]["lr"] == 0.01 and cfg["supervised"]["encoder_lr_factor"] == 0.1
    # an explicit choice wins over both defaults
    cfg = _finetune(tmp_path, ckpt, store, "augment.preset=none", "optim.lr=0.001")
    assert cfg["augment"]["preset"] == "none" and cfg["optim"]["lr"] == 0.001


def test_finetune_without_recorded_preset_uses_the_train_default(tmp_path):
    store = toy_store(tmp_path / "store")
    cfg = _finetune(tmp_path, _encoder(tmp_path / "enc.pt", config=None), store)
    assert cfg["augment"]["preset"] == "paper"


@pytest.mark.parametrize("augment, expect", [
    ({"preset": "weak", "mixup": "aligned", "mixup_partner": "self", "mixup_alpha": 0.5}, ("weak", "aligned", "self", 0.5)),
    # the object's other fit is a pretraining partner: fine-tuning has one fit a row
    ({"preset": "weak", "mixup": "aligned", "mixup_partner": "view", "mixup_alpha": None}, ("weak", "none", "batch", None)),
    ({"preset": "paper+selfmix"}, ("paper", "aligned", "self", None)),  # a pretraining config of before augment.mixup
])
def test_fine_tuning_inherits_the_pretraining_augmentation(augment, expect):
    c = finetune_config("encoder.pt", "store", pretrain_config={"augment": augment})
    assert (c.augment.preset, c.augment.mixup, c.augment.mixup_partner, c.augment.mixup_alpha) == expect
