"""The ``crewship-async`` command line: runs, threads, tables, batches, emulator, demo.

``main(argv)`` runs one command and returns its exit code: 0 success, 1 an API, network
or I/O error (reported as one ``error: ...`` line on stderr), 2 a usage error, 130
interrupted, 141 stdout closed by its reader (``| head``; nothing is printed). Human
output needs ``rich`` (``pip install 'crewship-async[cli]'``); ``--json`` output does not.
"""

from ._app import main

__all__ = ["main"]
