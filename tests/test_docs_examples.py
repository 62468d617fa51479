"""Every ```python block of docs/*.md and README.md runs, so the examples cannot rot.

The rules (also in CONTRIBUTING.md):

* Each block runs on its own, in a fresh namespace (``__name__`` is
  ``"__docs_example__"``, so ``if __name__ == "__main__":`` blocks do not
  run) and in a fresh temporary working directory. A reader can copy any
  block alone and run it.
* A block whose first line starts with ``# continued`` runs in the namespace
  left by the block before it on the same page (the two are one test).
* A block whose first line is exactly ``# fragment`` is only compiled: it
  must be valid Python, but it may use names it does not define (``app``,
  your models). Use it for snippets that only make sense inside a reader's
  own app.
* Nothing may hang: ``Flask.run`` and ``werkzeug.serving.run_simple`` do
  nothing while a block runs, and a block still running after
  ``TIMEOUT`` seconds fails.
* Warnings are errors, as in the rest of the suite, and a block must not
  leave an app context pushed. An example that leaves a file or a socket
  open fails (``ResourceWarning``): close what you open.

The markers are removed from the published site by ``docs/hooks.py``.
"""

from __future__ import annotations

import dataclasses
import gc
import pathlib
import re
import signal
import textwrap
import types
import typing as t

import flask
import pytest
import werkzeug.serving

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FRAGMENT = "# fragment"
CONTINUED = "# continued"
TIMEOUT = 30

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)")

#: Blocks of pages other helpers are rewriting (page, first line) -> why they may still fail.
#: Remove an entry once the page marks the block ``# fragment`` or makes it complete.
PENDING: dict[tuple[str, str], str] = {
    (
        "deployment.md",
        'app.config["AUTHGATE_REVOCATION_STORE"] = "redis://:password@redis.internal:6379/0"',
    ): "deployment.md is being rewritten on another branch",
    (
        "deployment.md",
        "from werkzeug.middleware.proxy_fix import ProxyFix",
    ): "deployment.md is being rewritten on another branch",
    ("deployment.md", '@app.get("/healthz")'): "deployment.md is being rewritten on another branch",
    ("jwks.md", "import http.server"): "jwks.md is being rewritten on another branch (server_close() missing)",
    # Until init_app calls openapi.auto_document and AuthGate.document exists (the lead wires both).
    ("openapi.md", "from apiflask import APIFlask"): "AuthGate.document / auto_document not wired yet",
    ("openapi.md", "from flask import Flask"): "AuthGate.document not wired yet",
}


@dataclasses.dataclass(frozen=True)
class Block:
    path: pathlib.Path
    line: int
    source: str

    @property
    def page(self) -> str:
        return self.path.name

    @property
    def first_line(self) -> str:
        return self.source.split("\n", 1)[0].strip()

    @property
    def is_fragment(self) -> bool:
        return self.first_line == FRAGMENT

    @property
    def is_continued(self) -> bool:
        return self.first_line.startswith(CONTINUED)


def python_blocks(path: pathlib.Path) -> list[Block]:
    """The ```python (or ```py) blocks of a Markdown file, dedented, with their line numbers."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if match is None:
            i += 1
            continue
        fence = match["fence"]
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        start = i + 1
        i = start
        while i < len(lines) and not close.match(lines[i]):
            i += 1
        if match["lang"] in ("python", "py"):
            blocks.append(Block(path, start, textwrap.dedent("\n".join(lines[start:i])) + "\n"))
        i += 1
    return blocks


def chains() -> list[t.Any]:
    """One pytest param per block, with the ``# continued`` blocks after it."""
    params: list[t.Any] = []
    for page in PAGES:
        current: list[Block] = []
        for block in python_blocks(page):
            if block.is_continued and current:
                current.append(block)
                continue
            if current:
                params.append(current)
            current = [block]
        if current:
            params.append(current)
    out = []
    for chain in params:
        head = chain[0]
        reason = PENDING.get((head.page, head.first_line))
        marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        out.append(pytest.param(chain, id=f"{head.page}:{head.line}", marks=marks))
    return out


def _timeout(signum: int, frame: types.FrameType | None) -> None:
    raise TimeoutError(f"a docs example ran for more than {TIMEOUT} s")


@pytest.mark.parametrize("chain", chains())
def test_docs_example(chain: list[Block], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(flask.Flask, "run", lambda *args, **kwargs: None)
    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda *args, **kwargs: None)
    namespace: dict[str, t.Any] = {"__name__": "__docs_example__"}
    alarm = hasattr(signal, "SIGALRM")  # POSIX; elsewhere a hang is left to the CI timeout
    previous = signal.signal(signal.SIGALRM, _timeout) if alarm else None
    if alarm:
        signal.alarm(TIMEOUT)
    try:
        for block in chain:
            # Leading blank lines keep the traceback's line numbers those of the Markdown file.
            code = compile("\n" * block.line + block.source, str(block.path), "exec")
            if block.is_fragment:
                continue  # compiled is all a fragment promises
            exec(code, namespace)  # noqa: S102 - the project's own documentation
    finally:
        if alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        namespace.clear()
        # Unclosed files and sockets warn when collected: collect now, so the warning fails
        # the example that leaked them rather than whichever test runs next.
        gc.collect()


def test_the_parser_finds_every_kind_of_block(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n"
        "```python\nx = 1\n```\n"
        "```console\n$ not python\n```\n"
        "1. a list item\n\n    ```py\n    y = 2\n    ```\n"
        "````python\n```\nnested = True\n````\n"
        "```python\n# fragment\nundefined_name\n```\n"
    )
    blocks = python_blocks(page)
    assert [(b.line, b.source) for b in blocks] == [
        (2, "x = 1\n"),
        (10, "y = 2\n"),
        (13, "```\nnested = True\n"),
        (17, "# fragment\nundefined_name\n"),
    ]
    assert [b.is_fragment for b in blocks] == [False, False, False, True]


def test_most_examples_run() -> None:
    """Fragments are the exception: at least four of five blocks actually run."""
    blocks = [b for page in PAGES for b in python_blocks(page)]
    fragments = [b for b in blocks if b.is_fragment]
    assert len(blocks) >= 50
    assert len(fragments) * 5 <= len(blocks), [f"{b.page}:{b.line}" for b in fragments]


def test_servers_do_not_start_and_hangs_fail(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nfrom flask import Flask\n\nFlask(__name__).run()  # returns at once here\n```\n"
        "```python\n# continued\nimport time\n\ntime.sleep(5)\n```\n"
    )
    runs, hangs = python_blocks(page)
    assert hangs.is_continued
    test_docs_example([runs], tmp_path, monkeypatch)
    monkeypatch.setattr(f"{__name__}.TIMEOUT", 1)
    with pytest.raises(TimeoutError):
        test_docs_example([runs, hangs], tmp_path, monkeypatch)


def test_fragments_must_compile(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\n# fragment\nnot python at all (\n```\n")
    with pytest.raises(SyntaxError):
        test_docs_example(python_blocks(page), tmp_path, monkeypatch)
