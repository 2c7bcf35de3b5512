"""The error every service raises for input it refuses; views show its message."""


class ServiceError(ValueError):
    """A request the rules refuse, with a message fit to show the user."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
