"""The CLI's own errors: each carries the exit code it ends the command with."""

from __future__ import annotations

__all__ = ["CLIError", "InputFileError", "UsageError", "is_broken_pipe"]


class CLIError(Exception):
    """A failure the CLI reports as one ``error: ...`` line on stderr; exit code 1."""

    exit_code = 1


class UsageError(CLIError):
    """A bad argument the parser could not catch (malformed JSON, a bad column spec); exit 2."""

    exit_code = 2


class InputFileError(CLIError):
    """A file named on the command line that cannot be read; exit 1, like every I/O error.

    Also raised from argparse type functions (``--input @file``): argparse lets it through,
    and :func:`~crewship_async.cli.main` reports it as an I/O error, not a usage error.
    """


def is_broken_pipe(exc: BaseException) -> bool:
    """Whether ``exc`` (or the first error inside nested exception groups) says that the
    reader of a pipe went away (``BrokenPipeError``, ``EPIPE``)."""
    while not isinstance(exc, BrokenPipeError):
        inner = getattr(exc, "exceptions", None)
        if not (isinstance(inner, tuple) and inner and isinstance(inner[0], BaseException)):
            return False
        exc = inner[0]
    return True
