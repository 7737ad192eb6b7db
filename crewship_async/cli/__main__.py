"""``python -m crewship_async.cli``: the same as the ``crewship-async`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
