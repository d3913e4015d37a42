"""One rule for choosing the device every command and library function runs on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from .errors import SslWsError

if TYPE_CHECKING:  # torch is imported when a device is resolved, not when the CLI starts
    import torch

__all__ = ["resolve_device"]


def resolve_device(name: Union[str, "torch.device", None] = "auto") -> "torch.device":
    """``"auto"`` or ``None`` -> ``cuda`` when available, else ``cpu``; anything else
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``) as given, checked to exist.

    Raises :class:`~ssl_ws.errors.SslWsError` with a one-line reason for a malformed name,
    CUDA asked for where there is none, or a device index that does not exist.
    """
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = name if isinstance(name, torch.device) else torch.device(str(name))
    except RuntimeError:
        raise SslWsError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SslWsError(f"device {str(name)!r} was asked for but CUDA is not available here; use --device cpu")
    try:
        torch.empty(0, device=dev)  # e.g. cuda:3 on a one-GPU machine
    except (RuntimeError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SslWsError(f"device {str(name)!r} is not available: {first}") from None
    return dev
