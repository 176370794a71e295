"""Griffe extension: render msgbridge's Sphinx-flavoured docstrings in mkdocstrings.

The sources document themselves the Sphinx way; mkdocstrings renders Markdown. This
extension, loaded by ``mkdocs.yml`` (``plugins.mkdocstrings...extensions``), rewrites each
docstring once the package is loaded, so the sources need not change:

* ``#:`` comments above an attribute become its docstring (Sphinx autodoc reads them;
  griffe does not);
* ``:class:`~a.b.C```, ``:func:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:data:``,
  ``:exc:``, ``:obj:`` become optional cross-references: a link when the target is
  rendered somewhere in the API reference, plain code otherwise (never a broken link);
* reST simple tables (``=====  =====`` borders) become Markdown tables;
* a paragraph ending in ``::`` loses one colon (the indented block after it is already a
  Markdown code block), and a ``::`` alone on its line (the block needs no lead-in) goes.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")
_BORDER = re.compile(r"^\s*=+(?:\s+=+)+\s*$")


def _link(obj: griffe.Object, match: re.Match[str]) -> str:
    target = match["target"].strip()
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
    identifier = target
    if "." not in target or not target.startswith("msgbridge"):
        try:
            identifier = obj.resolve(target.split(".", 1)[0])
            rest = target.split(".", 1)[1:]
            if rest:
                identifier = f"{identifier}.{rest[0]}"
        except (griffe.NameResolutionError, AttributeError, KeyError):
            identifier = target
    code = f"<code>{html.escape(shown)}</code>"
    return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'


def _spans(border: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", border)]


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    cells = []
    for index, (start, end) in enumerate(spans):
        stop = len(line) if index == len(spans) - 1 else end
        cells.append(line[start:stop].strip())
    return cells


def _tables(text: str) -> str:
    """Convert reST simple tables (header, border, rows, border) to Markdown tables."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if _BORDER.match(lines[j])), None)
        last = (
            next((j for j in range(end + 1, len(lines)) if _BORDER.match(lines[j])), None)
            if end is not None
            else None
        )
        if end is None or last is None:
            out.append(lines[i])
            i += 1
            continue
        spans = _spans(lines[i])
        heads = [_cells(x, spans) for x in lines[i + 1 : end]]
        header = [" ".join(parts) for parts in zip(*heads, strict=True)]
        rows: list[list[str]] = []
        for line in lines[end + 1 : last]:
            if not line.strip():
                continue
            cells = _cells(line, spans)
            if rows and not cells[0]:  # a continuation line of the previous row
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
            else:
                rows.append(cells)
        if out and out[-1].strip():
            out.append("")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        out.extend("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows)
        out.append("")
        i = last + 1
    return "\n".join(out)


def _rewrite(obj: griffe.Object, text: str) -> str:
    text = _ROLE.sub(lambda m: _link(obj, m), text)
    text = _tables(text)
    text = re.sub(r"(?m)^[ \t]*::[ \t]*\n", "", text)
    return re.sub(r"(?m)(\S)::$", r"\1:", text)


def _comment_docstring(attr: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines right above *attr*, if any."""
    try:
        source = attr.lines_collection[attr.filepath]  # type: ignore[index]
    except (KeyError, TypeError, griffe.BuiltinModuleError):
        return None
    if attr.lineno is None:
        return None
    comments: list[str] = []
    index = attr.lineno - 2
    while index >= 0 and source[index].strip().startswith("#:"):
        comments.insert(0, source[index].strip()[2:].strip())
        index -= 1
    return "\n".join(comments) or None


class SphinxCompat(griffe.Extension):
    """Rewrite docstrings after the package is loaded (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        pending: list[griffe.Object] = [pkg]
        while pending:
            obj = pending.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, griffe.Attribute) and obj.docstring is None:
                comment = _comment_docstring(obj)
                if comment is not None:
                    obj.docstring = griffe.Docstring(comment, parent=obj)
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)
            pending.extend(m for m in obj.members.values() if not m.is_alias)
