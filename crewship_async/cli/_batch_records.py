"""The output file of ``batch``: what an earlier attempt recorded, read back and repaired.

Each line is one outcome: ``{"index", "input", "run_id", "status"}`` for a created run, or
``{"index", "input", "error", "error_type", ...}`` for a failure. A later line of an index
replaces an earlier one.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import IO, Optional

from ._errors import CLIError, UsageError
from ._output import Output

__all__ = ["FAILED", "OK", "UNSURE", "load_done", "load_outcomes", "open_records"]

#: What :func:`load_outcomes` says of an index: created, failed, or failed with a request
#: that may have reached the server (its run may or may not exist).
OK, FAILED, UNSURE = "ok", "failed", "unsure"

_MAY_HAVE_BEEN_SENT = frozenset({"APIConnectionError", "APITimeoutError"})


def load_done(path: str) -> tuple[set[int], bool]:
    """The indices recorded in the output file ``path``; repairs a cut-short last line.

    Returns ``(indices, repaired)``; see :func:`load_outcomes`.
    """
    outcomes, repaired = load_outcomes(path)
    return set(outcomes), repaired


def load_outcomes(path: str) -> tuple[dict[int, str], bool]:
    """The latest outcome of each index recorded in the output file ``path``: :data:`OK`,
    :data:`FAILED` or :data:`UNSURE`; repairs a cut-short last line.

    Returns ``(outcomes, repaired)``. A later line of an index replaces an earlier one
    (``--retry-failed`` appends new outcomes). Every line that ends with a newline must be
    a JSON object with an integer ``index`` (else :class:`UsageError`). A last line without
    a newline was cut short by a kill: it is removed (its index will be sent again),
    unless it is a complete record, which is kept and given its newline.
    """
    done: dict[int, str] = {}
    good_end = 0
    tail = b""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                tail = raw
                break
            good_end += len(raw)
            if not raw.strip():
                continue
            recorded = _record_outcome(raw)
            if recorded is None:
                raise UsageError(
                    f"{path} line {number} is not a batch outcome; fix it, or choose "
                    "another --output"
                )
            done[recorded[0]] = recorded[1]
    if not tail:
        return done, False
    recorded = _record_outcome(tail)
    with open(path, "r+b") as handle:
        if recorded is not None:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
            done[recorded[0]] = recorded[1]
        else:
            handle.truncate(good_end)
    return done, True


def _record_outcome(raw: bytes) -> Optional[tuple[int, str]]:
    """The index and outcome of one output line, or None if it is not an outcome."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    index = record.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        return None
    if "error" not in record:
        return index, OK
    if record.get("error_type") in _MAY_HAVE_BEEN_SENT and record.get("request_sent") is not False:
        return index, UNSURE
    return index, FAILED


def open_records(args: argparse.Namespace, out: Output) -> tuple[IO[str], dict[int, str], bool]:
    """The stream outcomes go to, the latest outcome of each index already recorded (see
    :func:`load_outcomes`), and whether to close the stream."""
    path = args.output
    if path is None or path == "-":
        for flag, wanted in (("--resume", args.resume), ("--retry-failed", args.retry_failed)):
            if wanted:
                raise UsageError(f"{flag} needs --output FILE (the results of the earlier attempt)")
        return out.stdout, {}, False
    done: dict[int, str] = {}
    exists = os.path.isfile(path) and os.path.getsize(path) > 0
    if exists and not (args.resume or args.retry_failed):
        raise UsageError(
            f"{path} already holds results: pass --resume to continue that batch "
            "(inputs already recorded are skipped) or --retry-failed to send its failures "
            "again, or choose another --output"
        )
    if args.retry_failed and not exists:
        raise UsageError(f"--retry-failed: {path} holds no results of an earlier attempt to retry")
    if exists:
        done, repaired = load_outcomes(path)
        if repaired:
            out.note(f"note: the last line of {path} was cut short; that input is retried")
    try:
        sink = open(path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    return sink, done, True
