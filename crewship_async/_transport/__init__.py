"""The one place that talks to aiohttp.

:class:`Transport` is what the resources call. Inside, one module per concern:

* ``_session``: who owns the ``aiohttp.ClientSession``, when it is made, its event loop;
* ``_call``: one call's attempts, retries and deadline (:class:`Caller`);
* ``_failures``: what a failed attempt becomes, without aiohttp's own text;
* ``_stream_open``: opening one event-stream connection;
* ``_hooks``: the ``on_response`` hooks and each call's record;
* ``_log``: the log lines of attempts and retries.

What a response body becomes is :mod:`crewship_async._responses`' job, what ``aclose``
can end lives in :mod:`crewship_async._connection`, and reading a stream is
:mod:`crewship_async._streams`'. Every SDK error leaving a public method has its foreign
exceptions cut from its chain.
"""

from ._call import CONNECT_TIMEOUT
from ._transport import USER_AGENT, Reply, Transport

__all__ = ["CONNECT_TIMEOUT", "USER_AGENT", "Reply", "Transport"]
