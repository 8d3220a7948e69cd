"""Errors raised by the run services; the API maps `status_code` to its HTTP answer."""

from __future__ import annotations


class RunError(Exception):
    status_code = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(RunError):
    status_code = 400


class TooLarge(RunError):
    status_code = 413


class Unprocessable(RunError):
    status_code = 422


class NotFound(RunError):
    status_code = 404


INVALID_KEY = "Invalid or Missing API key"  # Trigger.dev's words, for 401 answers


class KeyRevoked(RunError):
    """The API key a call was made with is no longer its environment's."""

    status_code = 401

    def __init__(self) -> None:
        super().__init__(INVALID_KEY)
