"""A griffe extension for the API reference: the few reStructuredText constructs of focalkit's
docstrings, rendered as Markdown.

focalkit's docstrings follow the Google style (Args/Returns/Example sections), which mkdocstrings
renders, with some Sphinx markup inside: ``.. math::`` blocks and ``:math:``, ``:func:``,
``:class:``, ``:mod:`` ... roles. Markdown would show them verbatim (and run a math block into the
paragraph), so this turns a math block into a fenced code block, a role into inline code and a
literal-block marker ("::") into a colon. The
"Example:" sections hold doctests, which Markdown would run together as text: they become fenced
Python blocks.
Loaded by mkdocs.yml (``extensions: [docs/_ext/griffe_rst.py]``); not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:math|func|class|mod|meth|attr|data|obj|exc):`~?([^`]+)`")


def _role(match: re.Match[str]) -> str:
    return f"`{match.group(1)}`"


def rst_to_markdown(text: str) -> str:  # noqa: C901 - one pass over the lines
    r"""Doctests -> fenced ``python`` blocks; ``.. math::`` -> fenced ``text`` blocks; ``:role:`x``` -> `` `x` ``.

    >>> print(rst_to_markdown("Loss:\n\n.. math::\n    a = b\n\nsee :func:`~focalkit.prior_bias`"))
    Loss:
    <BLANKLINE>
    ```text
    a = b
    ```
    <BLANKLINE>
    see `focalkit.prior_bias`
    >>> print(rst_to_markdown("p = sigmoid(x)::\n\n    loss = ...\n\nand ::\n\n    more"))
    p = sigmoid(x):
    <BLANKLINE>
        loss = ...
    <BLANKLINE>
    and
    <BLANKLINE>
        more
    >>> print(rst_to_markdown(r".. math:: b = -\log x"))
    ```text
    b = -\log x
    ```
    <BLANKLINE>
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        doctest = re.match(r"^(\s*)>>> ", lines[i])
        if doctest:  # a doctest block runs to the next blank line: fence it as Python
            indent = doctest.group(1)
            out.append(f"{indent}```python")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        m = re.match(r"^(\s*)\.\. math::\s*(.*)$", lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m.group(1)
        i += 1
        block: list[str] = [indent + "    " + m.group(2)] if m.group(2).strip() else []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        while block and not block[0].strip():
            block.pop(0)
        cut = min((len(b) - len(b.lstrip()) for b in block if b.strip()), default=0)
        out += [f"{indent}```text", *[indent + b[cut:] if b.strip() else "" for b in block], f"{indent}```", ""]
    # an RST literal-block marker: "text::" -> "text:", a lone " ::" goes (the indented block follows)
    fenced = False
    for k, line in enumerate(out):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.endswith("::"):
            out[k] = line[:-3] if line.endswith(" ::") else line[:-1]
    return _ROLE.sub(_role, "\n".join(out))


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring with :func:`rst_to_markdown` as griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
