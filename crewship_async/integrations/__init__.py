"""Helpers that wire the SDK into web frameworks.

* :mod:`crewship_async.integrations.aiohttp`: aiohttp.web (no extra needed).
* :mod:`crewship_async.integrations.starlette`: Starlette and FastAPI (the ``starlette``
  extra).

Each offers a webhook receiver route and a relay of a run's events to a browser.
"""
