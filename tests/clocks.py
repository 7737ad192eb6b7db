"""The grain of the event loop's clock, for tests that check a wait lasted long enough.

uvloop's ``loop.time()`` counts whole milliseconds, cached once per loop turn, so a wait
of 30 ms can read as 29 ms and two such waits as 59.999... ms in floating point. A test
that checks ``elapsed >= wait`` takes ``CLOCK_GRAIN`` off the wait so the clock's
rounding never fails it, while a wait that was skipped still does.
"""

from __future__ import annotations

__all__ = ["CLOCK_GRAIN"]

#: Two milliseconds: one for the clock's rounding at each end of the measured span.
CLOCK_GRAIN = 0.002
