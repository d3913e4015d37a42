"""User-facing errors.

Anything a user can cause (a bad path, a wrong architecture, an unknown config key)
raises :class:`SslWsError` with a message that fits on one line and says what to do.
The CLI prints it as ``error: <message>`` and exits with status 2, never a traceback.
"""


class SslWsError(Exception):
    """An error caused by the user's input, reported as one clear line."""
