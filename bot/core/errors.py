"""UserFacingError: stops the work at hand, rolls it back, and tells the person why (in Chinese)."""

from __future__ import annotations


class UserFacingError(Exception):
    """Stops the handler, rolls back its changes and tells the person `message` (Chinese)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
