"""UserFacingError: stops the work at hand, rolls it back, and tells the person why (in Chinese)."""

from __future__ import annotations


class UserFacingError(Exception):
    """Stops the handler, rolls back its changes and tells the person `message` (Chinese)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def refuse_if_longer(text: str, limit: int, what: str) -> None:
    """A refusal naming `what` when the person wrote more than its column holds."""
    if len(text) > limit:
        raise UserFacingError(f"{what}请控制在 {limit} 字以内（现有 {len(text)} 字）。")
