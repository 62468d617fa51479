"""mkdocs hooks: small fixes between the sources and the published pages.

* ``# fragment`` and ``# continued`` on the first line of a ```python block
  tell ``tests/test_docs_examples.py`` how to run the block (see
  ``CONTRIBUTING.md``); readers of the site do not need them.
* The docstrings are reST (Sphinx roles, ``.. versionadded::``, ``::``
  before a literal block); the API reference renders them as Markdown, so
  the roles and directives that would show up raw are rewritten in the HTML.
"""

from __future__ import annotations

import html
import re
import typing as t

_MARKER = re.compile(r"^([ \t]*```+[ \t]*(?:python|py)\b[^\n]*\n)[ \t]*# (?:fragment|continued)[^\n]*\n", re.M)
# :class:`~pkg.Name` rendered as ":class:<code>~pkg.Name</code>" (also with "Title <target>").
_ROLE = re.compile(r":(?:class|func|meth|attr|data|exc|mod|obj|const):<code>([^<]*)</code>")
_VERSION = re.compile(r"<p>\.\. (versionadded|versionchanged|deprecated):: ([^<]*)</p>")
_LITERAL = re.compile(r"::</p>")
_LABELS = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}


def on_page_markdown(markdown: str, **kwargs: t.Any) -> str:
    return _MARKER.sub(r"\1", markdown)


def _role(match: re.Match[str]) -> str:
    target = html.unescape(match[1])
    title, sep, _ = target.partition(" <")
    if sep:
        return f"<code>{html.escape(title)}</code>"
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"<code>{html.escape(target.lstrip('.'))}</code>"


def on_page_content(content: str, **kwargs: t.Any) -> str:
    if "doc-object" not in content:  # only the pages mkdocstrings rendered
        return content
    content = _ROLE.sub(_role, content)
    content = _VERSION.sub(lambda m: f"<p><em>{_LABELS[m[1]]} {m[2].strip()}.</em></p>", content)
    return _LITERAL.sub(":</p>", content)
