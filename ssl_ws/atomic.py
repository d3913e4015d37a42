"""Atomic writes: a reader sees the old file (or directory) or the new one, never half of one.

Every file and directory ssl_ws writes for later use (stores, chunks, checkpoints of
encoders, indexes, results JSONs) goes through one of these two context managers:

- :func:`atomic_write` -- a file: the body writes to a uniquely named temporary file in
  the target's directory, which is renamed over the target when the body returns
  (``os.replace`` is atomic on POSIX within one file system). If the body raises, the
  temporary file is removed and the target is untouched.
- :func:`atomic_directory` -- a directory: the body fills a temporary sibling directory,
  which is then swapped into place (:func:`swap_into_place`: an existing target is first
  renamed aside, then removed), so the target never holds a half-written tree.

The temporaries are hidden siblings (``.<name>.tmp-<random suffix>``): a killed process leaves at most a
dot-file next to the target, never a partial target.

One writer at a time (a fit's ``OUT.partial``, a run directory): :func:`try_lock` takes an
exclusive, non-blocking ``flock`` on a lock file; the kernel drops it however its holder exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator, Optional, Union

__all__ = ["atomic_write", "atomic_directory", "swap_into_place", "try_lock", "LockHeld"]

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing (``mode``: ``"w"`` text or ``"wb"`` binary) and
    rename it to ``path`` when the ``with`` body succeeds. The parent directory is created.

    Works with anything that writes to a file object: ``json.dump``, ``np.save`` /
    ``np.savez``, ``torch.save``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())  # what open() would have given
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; when the ``with`` body succeeds it
    replaces ``path`` (:func:`swap_into_place`), when it raises it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755 & ~_umask())
        swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished directory ``tmp`` to ``path``; an existing ``path`` is first moved
    aside (one rename) and removed afterwards, so ``path`` never holds a half-written tree."""
    tmp, path = Path(tmp), Path(path)
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        os.rename(path, old / "previous")
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` is what it wrote into the lock file (its pid), or ``"?"``."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


def try_lock(path: PathLike) -> Optional[int]:
    """An exclusive, non-blocking ``flock`` on ``path`` (created), this process's pid written into it.

    Returns the open descriptor: closing it (or the process ending, however it ends) releases the lock;
    ``None`` where there is no ``fcntl`` (nothing is locked). Raises :class:`LockHeld` when another
    process holds it, ``FileNotFoundError`` when its directory does not exist.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    import errno

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        try:
            holder = Path(path).read_text().strip() or "?"
        except OSError:
            holder = "?"
        raise LockHeld(holder) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
