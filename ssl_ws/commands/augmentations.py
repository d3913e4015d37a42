"""`ssl-ws augmentations`: list the augmentation presets, transforms and MixUp variants."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.epilog = "Use a preset by name: `ssl-ws show-augment STORE --augment paper`, or `augment: paper+mixup` in a config."


def describe() -> str:
    from ..augment import TRANSFORMS, list_presets
    from ..augment.mixup import PARTNERS, VARIANTS
    from ..augment.presets import MIXUP_SUFFIXES

    lines = ["presets (any base also takes one MixUp suffix: " + ", ".join(f"+{s}" for s in MIXUP_SUFFIXES) + "):"]
    presets = list_presets()
    width = max(len(n) for n in presets)
    lines += [f"  {name:<{width}}  {desc}" for name, desc in presets.items()]
    lines.append("")
    lines.append("transforms (ssl_ws.augment, called as t(ws, generator)):")
    width = max(len(n) for n in TRANSFORMS)
    lines += [f"  {name:<{width}}  {cls.summary}" for name, cls in TRANSFORMS.items()]
    lines.append("")
    lines.append(f"MixUp(variant={'|'.join(VARIANTS)}, alpha=None|a, partner={'|'.join(PARTNERS)}); "
                 "mix(ws, labels, generator, partner_ws=...) -> (mixed, soft labels)")
    return "\n".join(lines)


def run(args) -> int:
    print(describe())
    return 0
