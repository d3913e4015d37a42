"""The working directory ``OUT.partial`` of a resumable fit, claimed by one writer at a time.

``ssl-ws fit --out OUT`` saves finished chunks to ``OUT.partial/`` (:mod:`ssl_ws.inr.chunked`)
and removes it once ``OUT`` is written. Two fits on one ``--out`` at once would delete or
overwrite each other's chunks, so :func:`claim_partial` takes an exclusive, non-blocking
``fcntl.flock`` on ``OUT.partial/.lock`` for the whole run: a second writer is refused at
once with one line. The kernel drops the lock when its holder exits, however it exits
(SIGKILL included), so a killed fit resumes with the same command; nothing stale is left
to clean up. The lock file lives inside the directory, so removing the finished directory
removes it too; a claim that loses a race with that removal simply tries again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from ..atomic import LockHeld, try_lock
from ..errors import SslWsError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def claim_partial(partial) -> Iterator[Path]:
    """Create ``partial`` if needed and hold its lock until the block exits.

    Raises :class:`SslWsError` (one line, naming the holder's pid) when another process
    holds it. On systems without ``fcntl`` (Windows) nothing is locked.
    """
    partial = Path(partial)
    lock = partial / LOCK_NAME
    for _ in range(10):
        partial.mkdir(parents=True, exist_ok=True)
        try:
            fd = try_lock(lock)
        except FileNotFoundError:  # the directory vanished in between: its holder finished
            continue
        except LockHeld as held:
            raise SslWsError(f"another `ssl-ws fit` (pid {held.holder}) is writing {partial}; wait for it to finish "
                             f"or stop it (its saved chunks are kept), then run this command again") from None
        if fd is None:  # pragma: no cover - no fcntl: nothing is locked
            yield partial
            return
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # we locked a file its holder removed with the directory: claim afresh
            os.close(fd)
            continue
        try:
            yield partial
        finally:
            os.close(fd)  # releases the lock
        return
    raise SslWsError(f"could not claim {partial}: it keeps being removed by another process")


def clear_partial(partial) -> None:
    """Empty the claimed ``partial`` (chunks of another fit), keeping its lock file."""
    for p in Path(partial).iterdir():
        if p.name == LOCK_NAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def match_partial(partial, config, overwrite: bool, what: str = "fit") -> None:
    """Make the claimed ``partial`` hold chunks of the job identified by ``config`` (a JSON-able
    dict, kept as ``partial/config.json``): chunks of another job are refused in one line, or
    removed with ``overwrite``; an empty directory is taken over."""
    import json

    partial = Path(partial)
    try:
        old = json.loads((partial / "config.json").read_text())
    except (OSError, ValueError):
        old = None
    if old == config:
        return
    if any(p.name != LOCK_NAME for p in partial.iterdir()):
        if not overwrite:
            raise SslWsError(f"{partial} holds chunks of a different {what}; delete it or pass --overwrite")
        clear_partial(partial)
    (partial / "config.json").write_text(json.dumps(config, sort_keys=True))
