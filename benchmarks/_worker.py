"""Entry point of a client subprocess: ``python -m benchmarks._worker <module> <variant>
<params-json>`` (see :mod:`benchmarks._harness`)."""

from __future__ import annotations

import sys

from benchmarks._harness import raise_fd_limit, worker_main

if __name__ == "__main__":
    raise_fd_limit()
    sys.exit(worker_main(sys.argv[1:]))
