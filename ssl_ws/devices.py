"""One rule for choosing the device every command and library function runs on, and what memory it has free."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

from .errors import SslWsError

if TYPE_CHECKING:  # torch is imported when a device is resolved, not when the CLI starts
    import torch

__all__ = ["available_memory", "resolve_device"]


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


#: where Linux says how much memory this process may still take: the machine's, and its control group's
#: (a container's or a batch job's limit; cgroup v2, then v1)
MEMINFO = "/proc/meminfo"
CGROUP_LIMITS = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit
    except (OSError, ValueError):
        return None


def available_memory(device: Union[str, "torch.device"]) -> Optional[int]:
    """Bytes a new tensor could take on ``device``: CUDA's free memory; on the host the smaller of
    ``MemAvailable`` and what the process's control group still allows (Linux); else ``None`` (unknown)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    free = None
    try:
        with open(MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    for limit_path, usage_path in CGROUP_LIMITS:
        limit, usage = _read_int(limit_path), _read_int(usage_path)
        if free is not None and limit is not None and usage is not None:
            free = min(free, max(limit - usage, 0))
            break
    return free
