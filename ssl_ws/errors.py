"""User-facing errors.

Anything a user can cause (a bad path, a wrong architecture, an unknown config key)
raises :class:`SslWsError` with a message that fits on one line and says what to do.
The CLI prints it as ``error: <message>`` and exits with status 2, never a traceback.
"""


class SslWsError(Exception):
    """An error caused by the user's input, reported as one clear line."""


#: OSError numbers a user can cause and fix (a full disk, a quota, a read-only or forbidden place)
USER_ERRNOS = frozenset(
    getattr(__import__("errno"), name)
    for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM")
    if hasattr(__import__("errno"), name)
)


def user_os_error_message(exc: BaseException):
    """``"<reason> (<file>)"`` for an ``OSError`` a user can fix (:data:`USER_ERRNOS`), else None."""
    if isinstance(exc, OSError) and not isinstance(exc, SslWsError) and exc.errno in USER_ERRNOS:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{where}"
    return None


class user_os_errors:
    """Context manager: an ``OSError`` a user can fix (disk full, quota, read-only file system,
    permission denied) becomes one :class:`SslWsError` line ``"<doing>: <reason> (<file>)<hint>"``;
    any other ``OSError`` passes through unchanged.

    >>> with user_os_errors("writing store out/", hint="; free space and run again"):
    ...     pass
    """

    def __init__(self, doing: str, hint: str = ""):
        self.doing, self.hint = doing, hint

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        reason = user_os_error_message(exc)
        if reason is not None:
            raise SslWsError(f"{self.doing}: {reason}{self.hint}") from None
        return False
