"""A griffe extension for the docs build: the package's docstrings use reST roles
(``:class:`Run```, ``:meth:`~EventStream.aclose```) that Markdown would show verbatim.
Each becomes inline code of the name (its last part after a ``~``), and a reST ``::``
that introduces a literal block becomes a plain colon (the indented block after it is
already a code block in Markdown)."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc|obj):`(~?)([^`]+)`")
LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _as_code(match: re.Match[str]) -> str:
    short, name = match.group(1), match.group(2)
    return f"`{name.rsplit('.', 1)[-1] if short else name}`"


class DocstringRoles(griffe.Extension):
    """Rewrites each object's docstring once it is loaded."""

    def on_instance(self, **kwargs: Any) -> None:
        obj = kwargs["obj"]
        docstring = obj.docstring
        if docstring is not None:
            text = ROLE.sub(_as_code, docstring.value)
            docstring.value = LITERAL_BLOCK.sub(":", text)
