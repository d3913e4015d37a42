"""Run configurations: YAML files + dotted command-line overrides, checked against a schema.

A config is an OmegaConf tree read from a YAML file, updated by ``key=value``
overrides (``trainer.max_epochs=2 encoder.hidden=8``), and merged onto a
structured schema (the dataclasses below) that supplies defaults and types. Every
key a user writes must exist in the schema; a typo raises
``SslWsError("unknown config key 'ssl.temprature'; did you mean 'ssl.temperature'?")``
(nearest key by :func:`difflib.get_close_matches`). The ``encoder`` section is
open: ``name`` picks a registry encoder, the other keys are its constructor
arguments (checked against its signature when the encoder is built).

The fully resolved config is saved as ``config.yaml`` beside every run, so a run
can always be reproduced (and resumed) from its directory alone.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .errors import SslWsError


def _f(default, help: str, factory=None):
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class DataConfig:
    store: str = _f("???", "required: path of the INR store (written by `ssl-ws fit` or `ssl-ws import`)")
    batch_size: int = _f(64, "INRs (SimCLR: positive pairs) per step and per device; the global batch is x devices x nodes")
    max_views: Optional[int] = _f(None, "views (independent fits) per object used in training; null = all")
    objects_per_class: Optional[int] = _f(None, "training objects per class (a fixed stratified subset drawn by object with "
                                          "seed 0, nested: 50 of a class are among its 100); null = all. For learning curves")
    eval_max_views: int = _f(1, "views per object embedded for evaluation (online kNN/probe, val/test accuracy)")
    num_workers: int = _f(0, "DataLoader worker processes gathering parameter batches from the memmap (where the "
                             "training rows are resident, see data.resident, they only draw the rows)")
    normalize: bool = _f(True, "standardize weights with symmetry-tied statistics of the training split (false: raw weights)")
    resident: Optional[bool] = _f(None, "hold the training rows in the training device's memory and gather each batch "
                                        "there (no read of the file, no copy to the device per step); null = when they "
                                        "take at most a quarter of its free memory")


@dataclass
class AugmentConfig:
    preset: str = _f("paper", "augmentation preset applied to raw weights (see `ssl-ws augmentations`)")
    preset2: Optional[str] = _f(None, "SimCLR: preset of the second view; null = same as `preset`")
    mixup: str = _f("none", "MixUp after the per-view transforms: 'none', 'plain', 'permute' or 'aligned' "
                            "(weight matching); supervised runs mix the labels too")
    mixup_partner: str = _f("batch", "what each INR is mixed with: 'batch' (another INR of the batch), 'self' (an "
                                     "augmented copy of itself) or 'view' (self-supervision on two fits: the object's "
                                     "other fit, mixed before the per-view transforms)")
    mixup_alpha: Optional[float] = _f(None, "MixUp lam ~ Beta(alpha, alpha); null = U(0, 1)")
    draws: str = _f("auto", "where each step's augmentation parameters are drawn: 'host' (a CPU generator: the same "
                            "draws on every machine), 'device' (a generator on the training device: nothing drawn on "
                            "or copied from the host; MixUp's Beta lam still passes through the host), 'auto' = "
                            "device on CUDA, host elsewhere")


@dataclass
class SSLConfig:
    objective: str = _f("simclr", "self-supervised objective: simclr, vicreg, barlowtwins, byol, or one registered "
                                  "with ssl_ws.train.objectives.register_objective")
    options: Dict[str, Any] = _f(None, "the objective's own hyperparameters (open section: vicreg lambda_param, "
                                       "mu_param, nu_param; barlowtwins lambda_param; byol momentum)", factory=dict)
    temperature: float = _f(0.1, "NT-Xent temperature (simclr)")
    positives: str = _f("auto", "positive pairs: 'same_fit' (two augmentations of one fit), 'two_views' (two fits of one "
                                "object) or 'auto' (two_views when every training object has two fits or more, else same_fit)")
    refit_views: int = _f(0, "one-fit stores: fit this many new views of every training object from fresh inits "
                                 "to its own rendering (`ssl-ws refit`) and take two fits of one object as positives; "
                                 "0 = off. Used when positives is auto or two_views and some training object has one fit")
    refit_dir: Optional[str] = _f(None, "where re-fitted stores are cached (keyed by the store's contents, views and "
                                        "seed); null = <output_dir>/refits")
    proj_hidden: int = _f(128, "hidden width of the objective's projection (and prediction) head")
    proj_out: int = _f(64, "output width of the projection head (the loss space)")


@dataclass
class SupervisedConfig:
    label_smoothing: float = _f(0.0, "label smoothing of the (soft) cross-entropy")
    pretrained: Optional[str] = _f(None, "encoder.pt or checkpoint to initialize the encoder (and normalizer) from")
    encoder_lr_factor: float = _f(1.0, "learning rate of the encoder = optim.lr x this (0 freezes it)")


@dataclass
class OptimConfig:
    name: str = _f("adamw", "optimizer: 'adamw', 'adam' or 'sgd'")
    lr: float = _f(1e-3, "peak learning rate")
    weight_decay: float = _f(1e-4, "decoupled weight decay (AdamW) / L2 (others)")
    scheduler: str = _f("cosine", "learning-rate schedule per step: 'cosine' (to 0) or 'constant'")
    warmup_epochs: float = _f(0.0, "linear warm-up length in epochs (ignored when warmup_steps is set)")
    warmup_steps: Optional[int] = _f(None, "linear warm-up length in optimizer steps; null = warmup_epochs")
    fused: Optional[bool] = _f(None, "torch's fused optimizer kernel (one kernel per step, not a few per parameter "
                                     "tensor: fewer launches where a GPU waits for the host); null = on CUDA; true = "
                                     "on the CPU too (same update, other rounding in the last bits); false = never")


@dataclass
class EvalConfig:
    every_n_epochs: int = _f(1, "evaluate every n epochs (and after the last)")
    every_n_steps: Optional[int] = _f(None, "evaluate at the first epoch end at least n optimizer steps after the last "
                                            "evaluation (and after the last step); overrides every_n_epochs")
    knn_k: int = _f(20, "neighbours of the online weighted kNN")
    knn_temperature: float = _f(0.07, "temperature of the weighted kNN vote")
    max_bank: Optional[int] = _f(20000, "at most this many training embeddings in the kNN bank; null = all")
    probe_max_train: int = _f(5000, "at most this many training embeddings to fit the online linear probe on")
    batch_size: int = _f(512, "INRs per forward pass when embedding for evaluation")


@dataclass
class TrainerConfig:
    max_epochs: int = _f(10, "number of epochs (ignored when max_steps is set)")
    max_steps: Optional[int] = _f(None, "optimizer steps to train for (epochs as needed; the schedule runs over them); "
                                        "compare methods at equal max_steps, never at equal epochs")
    accelerator: str = _f("auto", "'auto' (GPU when there is one), 'cpu', 'gpu', ...")
    devices: Any = _f("auto", "devices per node: 'auto', an int, or a list of ids")
    num_nodes: int = _f(1, "machines (DDP)")
    strategy: str = _f("auto", "'auto', 'ddp', 'ddp_spawn', ...; DDP gathers negatives across processes")
    precision: str = _f("32-true", "Lightning precision: '32-true', 'bf16-mixed', '16-mixed'")
    log_every_n_steps: int = _f(10, "TensorBoard logging interval of step metrics")
    checkpoint_every_n_steps: Optional[int] = _f(None, "also save last.ckpt every n steps (bounds the work a crash loses)")
    gradient_clip_val: Optional[float] = _f(None, "clip gradient norm at this value; null = no clipping")
    progress_bar: bool = _f(True, "show the progress bar")


@dataclass
class PretrainConfig:
    name: str = _f("pretrain", "run name: runs go to <output_dir>/<name>/<timestamp>/")
    seed: int = _f(0, "seed of the model init, data order and augmentations")
    output_dir: str = _f("runs", "root directory of runs")
    data: DataConfig = _f(None, "data", factory=DataConfig)
    encoder: Dict[str, Any] = _f(None, "encoder: 'name' (see `ssl-ws encoders`) + its keyword arguments", factory=lambda: {"name": "dwsnet"})
    augment: AugmentConfig = _f(None, "augmentations", factory=AugmentConfig)
    ssl: SSLConfig = _f(None, "SimCLR", factory=SSLConfig)
    optim: OptimConfig = _f(None, "optimizer", factory=OptimConfig)
    eval: EvalConfig = _f(None, "online evaluation", factory=EvalConfig)
    trainer: TrainerConfig = _f(None, "Lightning Trainer", factory=TrainerConfig)


@dataclass
class TrainConfig:
    name: str = _f("supervised", "run name: runs go to <output_dir>/<name>/<timestamp>/")
    seed: int = _f(0, "seed of the model init, data order and augmentations")
    output_dir: str = _f("runs", "root directory of runs")
    data: DataConfig = _f(None, "data", factory=DataConfig)
    encoder: Dict[str, Any] = _f(None, "encoder: 'name' (see `ssl-ws encoders`) + its keyword arguments", factory=lambda: {"name": "dwsnet"})
    augment: AugmentConfig = _f(None, "augmentations", factory=AugmentConfig)
    supervised: SupervisedConfig = _f(None, "supervised training", factory=SupervisedConfig)
    optim: OptimConfig = _f(None, "optimizer", factory=OptimConfig)
    eval: EvalConfig = _f(None, "evaluation", factory=EvalConfig)
    trainer: TrainerConfig = _f(None, "Lightning Trainer", factory=TrainerConfig)


SCHEMAS = {"pretrain": PretrainConfig, "train": TrainConfig}
OPEN_SECTIONS = ("encoder", "ssl.options")  # free-form keys (checked when used)


def _in_open_section(key: str) -> bool:
    return any(key == s or key.startswith(s + ".") for s in OPEN_SECTIONS)


def schema_keys(schema) -> List[str]:
    """Dotted names of every key of a schema (open sections appear as themselves)."""
    out = []
    for f in dataclasses.fields(schema):
        sub = _resolve(schema, f)
        if sub is not None:
            out.extend(f"{f.name}.{k}" for k in schema_keys(sub))
        else:
            out.append(f.name)
    return out


def _resolve(schema, f):
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return type(default) if dataclasses.is_dataclass(default) else None


def describe_schema(kind: str) -> str:
    """Text for ``--help``: every key with its default and a one-line meaning."""
    schema = SCHEMAS[kind]
    lines = []

    def walk(cls, prefix):
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                walk(type(default), f"{prefix}{f.name}.")
                continue
            shown = "null" if default is None else repr(default) if isinstance(default, str) else default
            lines.append(f"  {prefix}{f.name} = {shown}\n      {f.metadata.get('help', '')}")

    walk(schema, "")
    return "config keys (YAML file or key=value overrides):\n" + "\n".join(lines)


def flat_items(d, prefix="") -> Dict[str, Any]:
    """A nested config dict as ``{dotted key: value}``; an open section is one value."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in OPEN_SECTIONS:
            out.update(flat_items(v, key + "."))
        else:
            out[key] = v
    return out


def _flat_keys(d, prefix="") -> List[str]:
    return list(flat_items(d, prefix))


def _check_keys(user: Dict, kind: str) -> None:
    valid = schema_keys(SCHEMAS[kind])
    sections = {k.split(".")[0] for k in valid if "." in k}
    for key in _flat_keys(user):
        if key in valid or key in LEGACY_MIXUP_KEYS[kind] or _in_open_section(key):
            continue
        if key in sections:
            raise SslWsError(f"config key '{key}' is a section; set its keys (e.g. '{key}.<key>=...')")
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f"; see `ssl-ws {kind} --help` for the keys"
        raise SslWsError(f"unknown config key '{key}'{hint}")


#: the spellings of ``augment.mixup`` before it was one setting; configs and stored runs still hold them
LEGACY_MIXUP_KEYS = {"train": ("supervised.mixup", "supervised.mixup_alpha"),
                     "pretrain": ("ssl.view_mixup", "ssl.view_mixup_alpha")}


def migrate_mixup(layer: Dict) -> Dict:
    """One config layer (plain dicts) with the old MixUp spellings written as ``augment.mixup*``.

    Before: ``supervised.mixup`` (a variant mixed with the batch; ``none``: the preset's), a preset
    suffix (``augment.preset=paper+mixup``, :data:`~ssl_ws.augment.presets.MIXUP_SUFFIXES`) and
    ``ssl.view_mixup`` (aligned with the other fit, ``lam ~ Beta(ssl.view_mixup_alpha)``). Each layer
    says what it said before; later layers override earlier ones as for any key. One line when a
    layer contradicts itself.
    """
    layer = dict(layer)
    sup = dict(layer["supervised"]) if isinstance(layer.get("supervised"), dict) else {}
    ssl = dict(layer["ssl"]) if isinstance(layer.get("ssl"), dict) else {}
    aug = dict(layer["augment"]) if isinstance(layer.get("augment"), dict) else {}
    old_variant, old_alpha = sup.pop("mixup", None), sup.pop("mixup_alpha", None)
    view, view_alpha = ssl.pop("view_mixup", None), ssl.pop("view_mixup_alpha", None)
    suffixes = {}
    for key in ("preset", "preset2"):
        name = aug.get(key)
        if isinstance(name, str) and "+" in name:
            from .augment.presets import split_preset

            aug[key], suffixes[key] = split_preset(name)
    if aug.get("preset2") and suffixes.get("preset") != suffixes.get("preset2"):
        raise SslWsError("augment.preset and augment.preset2 name different MixUps; one MixUp serves both views "
                         "(augment.mixup)")
    found = None
    if old_variant not in (None, "none"):
        found = dict(variant=old_variant, partner="batch", alpha=old_alpha)
    elif suffixes:
        found = dict(next(iter(suffixes.values())), alpha=None)
    elif old_variant == "none":
        found = dict(variant="none", partner="batch", alpha=None)
    if view:
        if found is not None and found["variant"] != "none":
            raise SslWsError("ssl.view_mixup and another MixUp in one run; set one MixUp with augment.mixup")
        found = dict(variant="aligned", partner="view", alpha=1.0 if view_alpha is None else view_alpha)
    if found is not None and any(k in aug for k in ("mixup", "mixup_partner", "mixup_alpha")):
        raise SslWsError("the config sets MixUp twice: augment.mixup and an old spelling of it (supervised.mixup, "
                         "ssl.view_mixup or a '+mixup' preset suffix); keep augment.mixup")
    if found is not None:
        aug.update(mixup=found["variant"], mixup_partner=found["partner"], mixup_alpha=found["alpha"])
    elif old_alpha is not None:
        aug["mixup_alpha"] = old_alpha
    for section, value in (("supervised", sup), ("ssl", ssl), ("augment", aug)):
        if section in layer and not isinstance(layer[section], dict):
            continue  # not a mapping: the schema merge says so in one line
        if value:
            layer[section] = value
        else:
            layer.pop(section, None)
    return layer


def _drop_replaced_encoder_options(layers: List[Dict]) -> List[Dict]:
    """An ``encoder.name`` that differs from an earlier layer's (``-c cpu.yaml encoder.name=nfn``)
    replaces the encoder: the earlier layers' encoder options (meant for the other encoder) are
    dropped, so the new one starts from its own defaults plus the options given beside the name."""
    out = [dict(layer) for layer in layers]
    for i, layer in enumerate(out):
        enc = layer.get("encoder")
        name = enc.get("name") if isinstance(enc, dict) else None
        if name is None:
            continue
        for earlier in out[:i]:
            enc = earlier.get("encoder")
            if isinstance(enc, dict) and enc.get("name", name) != name:
                earlier["encoder"] = {"name": name}
    return out


def load_config(kind: str, path: Optional[str] = None, overrides: Sequence[str] = ()):
    """The resolved config (an OmegaConf ``DictConfig``) of a ``pretrain``/``train`` run.

    ``path``: a YAML file (optional); ``overrides``: ``key=value`` strings applied on top.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if kind not in SCHEMAS:
        raise ValueError(kind)
    layers = []
    if path is not None:
        import os

        from .files import load_yaml

        if not os.path.lexists(path):
            raise SslWsError(f"no such config file: {path}")
        y = load_yaml(path)
        if not isinstance(y, dict) and not OmegaConf.is_dict(y):
            raise SslWsError(f"config {path} must be a mapping of keys")
        layers.append(OmegaConf.to_container(y, resolve=False))
    for ov in overrides:
        if "=" not in ov:
            raise SslWsError(f"override {ov!r} must look like key=value (e.g. trainer.max_epochs=2)")
    try:
        if overrides:
            layers.append(OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides))))
    except OmegaConfBaseException as exc:
        raise SslWsError(f"bad override: {str(exc).splitlines()[0]}") from None
    for layer in layers:
        _check_keys(layer, kind)
    layers = _drop_replaced_encoder_options([migrate_mixup(layer) for layer in layers])
    base = OmegaConf.structured(SCHEMAS[kind])
    try:
        cfg = OmegaConf.merge(base, *layers)
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        msg = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", None)
        raise SslWsError(f"bad config value{f' for {key!r}' if key else ''}: {msg}") from None
    if "name" not in cfg.encoder:
        raise SslWsError("config key 'encoder.name' is required (see `ssl-ws encoders`)")
    _check_values(cfg, kind)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise SslWsError(f"config key '{missing[0]}' is required: pass {missing[0]}=... on the command line")
    return cfg


#: (key, lower bound, upper bound, lower inclusive, null allowed): every number must also be finite
RANGES = {
    "both": [
        ("seed", 0, 2**32 - 1, True, False),
        ("data.batch_size", 2, None, True, False),
        ("data.max_views", 1, None, True, True),
        ("data.objects_per_class", 1, None, True, True),
        ("data.eval_max_views", 1, None, True, False),
        ("data.num_workers", 0, 256, True, False),
        ("optim.lr", 0, 10.0, False, False),
        ("optim.weight_decay", 0, 10.0, True, False),
        ("optim.warmup_epochs", 0, None, True, False),
        ("optim.warmup_steps", 0, None, True, True),
        ("eval.every_n_epochs", 1, None, True, False),
        ("eval.every_n_steps", 1, None, True, True),
        ("eval.knn_k", 1, None, True, False),
        ("eval.knn_temperature", 0, None, False, False),
        ("eval.max_bank", 1, None, True, True),
        ("eval.probe_max_train", 2, None, True, False),
        ("eval.batch_size", 1, None, True, False),
        ("trainer.max_epochs", 1, None, True, False),
        ("trainer.max_steps", 1, None, True, True),
        ("trainer.num_nodes", 1, 4096, True, False),
        ("trainer.log_every_n_steps", 1, None, True, False),
        ("trainer.checkpoint_every_n_steps", 1, None, True, True),
        ("trainer.gradient_clip_val", 0, None, False, True),
        ("augment.mixup_alpha", 0, None, False, True),
    ],
    "pretrain": [
        ("ssl.temperature", 0, None, False, False),
        ("ssl.refit_views", 0, 64, True, False),
        ("ssl.proj_hidden", 1, 65536, True, False),
        ("ssl.proj_out", 1, 65536, True, False),
    ],
    "train": [
        ("supervised.label_smoothing", 0, 1, True, False),
        ("supervised.encoder_lr_factor", 0, 1e3, True, False),
    ],
}


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def _check_range(key, value, lo, hi, lo_inclusive, nullable):
    import math

    if value is None:
        if nullable:
            return
        raise SslWsError(f"{key} must be set (null is not allowed)")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SslWsError(f"{key} must be a finite number, got {value!r}")
    low_ok = value >= lo if lo_inclusive else value > lo
    if not low_ok or (hi is not None and value > hi):
        low = f"at least {lo}" if lo_inclusive else "positive" if lo == 0 else f"greater than {lo}"
        bound = f"{low} and at most {hi}" if hi is not None else low
        extra = " or null" if nullable else ""
        raise SslWsError(f"{key} must be {bound}{extra}, got {value!r}")


def _lightning_choices():
    """Precisions, strategies and accelerators Lightning knows (imported only when a config asks for one
    that is not a default)."""
    import typing

    from lightning_fabric.connector import _PRECISION_INPUT_INT, _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS
    from pytorch_lightning.accelerators import AcceleratorRegistry
    from pytorch_lightning.strategies import StrategyRegistry

    precisions = list(dict.fromkeys([*typing.get_args(_PRECISION_INPUT_STR), *typing.get_args(_PRECISION_INPUT_STR_ALIAS),
                                     *map(str, typing.get_args(_PRECISION_INPUT_INT))]))
    strategies = ["auto", *StrategyRegistry.available_strategies()]
    accelerators = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
    return precisions, strategies, accelerators


def _check_trainer(t) -> None:
    def choice(key, value, options):
        if value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of {options}"
            raise SslWsError(f"{key}={value!r} is not one Lightning knows{hint}")

    precision, strategy, accelerator = str(t.precision), str(t.strategy), str(t.accelerator)
    if precision == "32-true" and strategy == "auto" and accelerator in ("auto", "cpu"):
        return
    precisions, strategies, accelerators = _lightning_choices()
    choice("trainer.precision", precision, precisions)
    choice("trainer.strategy", strategy, strategies)
    choice("trainer.accelerator", accelerator, accelerators)
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SslWsError(f"trainer.accelerator={accelerator} but this machine has no CUDA GPU; "
                             "use trainer.accelerator=auto or cpu")
    elif accelerator not in ("auto", "cpu"):
        from pytorch_lightning.accelerators import AcceleratorRegistry

        if not AcceleratorRegistry.get(accelerator).is_available():
            raise SslWsError(f"trainer.accelerator={accelerator} is not available on this machine; "
                             "use trainer.accelerator=auto or cpu")


def _check_paths(cfg) -> None:
    import os

    out, name = str(cfg.output_dir), str(cfg.name)
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise SslWsError(f"name must be a plain directory name (no '/', not '.' or '..'), got {name!r}")
    if "\0" in out or not out:
        raise SslWsError(f"output_dir must be a directory path, got {out!r}")
    probe = out
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe.rstrip("/"))
        probe = parent if parent != probe else ""
    if probe and not os.path.isdir(probe):
        raise SslWsError(f"output_dir {out!r}: {probe!r} is a file, not a directory")
    if os.path.exists(os.path.join(out, name)) and not os.path.isdir(os.path.join(out, name)):
        raise SslWsError(f"{os.path.join(out, name)!r} is a file; runs need it to be a directory")


def _check_values(cfg, kind: str) -> None:
    def choice(key, value, options):
        if value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SslWsError(f"{key} must be one of {list(options)}, got {value!r}{hint}")

    choice("optim.name", cfg.optim.name, ("adamw", "adam", "sgd"))
    choice("augment.draws", cfg.augment.draws, ("auto", "host", "device"))
    choice("optim.scheduler", cfg.optim.scheduler, ("cosine", "constant"))
    for key, lo, hi, inclusive, nullable in RANGES["both"] + RANGES[kind]:
        _check_range(key, _get(cfg, key), lo, hi, inclusive, nullable)
    if kind == "pretrain":
        choice("ssl.positives", cfg.ssl.positives, ("auto", "same_fit", "two_views"))
    choice("augment.mixup", cfg.augment.mixup, ("none", "plain", "permute", "aligned"))
    choice("augment.mixup_partner", cfg.augment.mixup_partner, ("batch", "self", "view"))
    if cfg.augment.mixup != "none" and cfg.augment.mixup_partner == "view":
        if kind == "train":
            raise SslWsError("augment.mixup_partner=view mixes two fits of one object in self-supervision; "
                             "supervised runs mix with 'batch' or 'self'")
        if cfg.ssl.positives == "same_fit":
            raise SslWsError("augment.mixup_partner=view mixes two fits of one object: it needs ssl.positives=two_views")
    _check_trainer(cfg.trainer)
    _check_paths(cfg)


def to_yaml(cfg) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


def to_dict(cfg) -> Dict:
    """A config (OmegaConf or its typed dataclass form) as plain nested dicts."""
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def to_typed(cfg):
    """The config as its schema's dataclass (:class:`PretrainConfig` / :class:`TrainConfig`):
    typed attributes the training code reads (``cfg.optim.lr``), checked by the schema."""
    if dataclasses.is_dataclass(cfg):
        return cfg
    from omegaconf import OmegaConf

    return OmegaConf.to_object(cfg)
