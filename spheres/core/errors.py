"""User-facing input errors.

Library code raises :class:`InputError` for bad input at the boundary (command line flags,
config files, run directories). The command line prints its message on one line and exits
with status 2; no traceback. The message names the field and the allowed range.
"""


class InputError(ValueError):
    """Bad user input. ``str(err)`` is a one-line message naming the field and what is allowed."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")
