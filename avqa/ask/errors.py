"""The one kind of error avqa.ask reports: a sentence for the user and its exit status."""
from __future__ import annotations


class AskError(Exception):
    """Bad input or a missing file: one sentence for the user; ``code`` is the exit status (EXIT_CODES)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code
