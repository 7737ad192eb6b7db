"""The crewship_async benchmark suite: ``python -m benchmarks`` (see ``benchmarks/README.md``).

Client CPU time per operation of the SDK against raw aiohttp, httpx and pydantic, SSE
libraries and openai, each client in its own process, against a canned upstream in
another process. Only ratios between figures of the same run are meaningful.
"""
