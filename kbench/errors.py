"""Errors that the CLI turns into a one-line message and exit code 2 (bad usage or input)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad usage or bad input: unknown model, impossible input size, malformed file, bad flag.

    The message is one line that names the offending value and what is allowed.
    """

    exit_code = 2


class UnknownModelError(UsageError, KeyError):
    def __str__(self):  # KeyError would quote the message
        return self.args[0]


class InputSizeError(UsageError, ValueError):
    pass
