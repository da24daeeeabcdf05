"""The ``Parameters`` section of a numpydoc docstring, read without numpydoc."""

from __future__ import annotations

import inspect
import re


def _section(doc, title):
    """The lines of section ``title`` of the cleaned docstring ``doc`` (without header)."""
    lines = doc.splitlines()
    out, inside = [], False
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip())
        if underline and not line.startswith(" "):
            if inside:
                break
            inside = line.strip() == title
            continue
        if inside and not re.fullmatch(r"-{3,}", line.strip()):
            out.append(line)
    return out


def parameter_docs(obj):
    """Each documented parameter of ``obj``: name -> ``(type, description)``.

    ``a, b : int`` documents both ``a`` and ``b``; the description is the indented text
    below, joined into one line.

    Examples
    --------
    >>> def f(x, *, n=1):
    ...     '''Sum.
    ...
    ...     Parameters
    ...     ----------
    ...     x : array_like
    ...         Values.
    ...     n : int, optional
    ...         How many,
    ...         at most.
    ...     '''
    >>> parameter_docs(f)["n"]
    ('int, optional', 'How many, at most.')
    """
    doc = inspect.getdoc(obj) or ""
    out, current = {}, None
    for line in _section(doc, "Parameters"):
        if line and not line.startswith(" "):
            names, _, kind = line.partition(" : ") if " : " in line else (line, "", "")
            current = [n.strip().lstrip("*") for n in names.split(",") if n.strip()]
            for name in current:
                out[name] = [kind.strip(), []]
        elif current is not None and line.strip():
            for name in current:
                out[name][1].append(line.strip())
    return {name: (kind, " ".join(words)) for name, (kind, words) in out.items()}
