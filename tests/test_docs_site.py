"""The documentation site: it builds with ``mkdocs build --strict`` and no warning, and reads well in Chromium.

The site is built once into a temporary directory. The checks on the HTML
run everywhere; the ``browser`` tests serve the site on 127.0.0.1 and take
screenshots of the home page, the API reference and "Testing your app" into
``test-artifacts/docs/`` with Debian's Chromium, refusing any request that
leaves the machine (the site must work offline).
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import http.server
import os
import pathlib
import re
import typing as t

import pytest
from conftest import IN_CI
from kit import ROOT
from kit import chromium
from kit import python_m
from kit import serving

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import Request

ARTIFACTS = ROOT / "test-artifacts" / "docs"


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{module} is missing: install the 'docs' dependency group")
        pytest.skip(f"{module} is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The site, built from this checkout with ``--strict``."""
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        _need(module)
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = python_m("mkdocs", "build", "--strict", "--site-dir", str(out), env=env, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    return out


def page(site: pathlib.Path, name: str) -> str:
    return (site / name / "index.html" if name else site / "index.html").read_text(encoding="utf-8")


def test_theme_and_offline_assets(site: pathlib.Path) -> None:
    home = page(site, "")
    assert re.search(
        r'<meta name="generator" content="mkdocs-[\d.]+, mkdocs-material-', home
    )  # the material theme, not the stock one
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        # Every stylesheet and script is part of the site: nothing from a CDN or a font service.
        external = re.findall(r'<(?:link|script)[^>]+(?:href|src)="(https?://[^"]+)"', text)
        assert external == [], (html, external)
        assert "fonts.googleapis" not in text


def test_code_is_highlighted_at_build_time(site: pathlib.Path) -> None:
    testing = page(site, "testing")
    assert '<div class="language-python highlight">' in testing
    assert '<span class="kn">from</span>' in testing  # Pygments tokens, no JavaScript highlighter


def test_docs_test_markers_are_hidden(site: pathlib.Path) -> None:
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert '<span class="c1"># fragment</span>' not in text, html
        assert '<span class="c1"># continued' not in text, html
    assert not (site / "hooks.py").exists()


def test_api_reference_is_generated_from_the_docstrings(site: pathlib.Path) -> None:
    api = page(site, "api")
    for anchor in (
        "flask_authgate.AuthGate",
        "flask_authgate.AuthGate.create_access_token",
        "flask_authgate.roles_required",
        "flask_authgate.Identity",
        "flask_authgate.testing.AuthGateClient",
        "flask_authgate.testing.make_token",
        "flask_authgate.testing.FakeIdentityProvider",
    ):
        assert f'id="{anchor}"' in api, anchor
    # A docstring sentence, rendered: the reference is not hand-written.
    assert "Make a token signed with" in api
    assert "fake_identity_provider" in api
    # reST in the docstrings is rewritten for the site (docs/hooks.py), not shown raw.
    assert ":class:" not in api
    assert ".. versionadded" not in api
    assert "Added in version 0.2." in api


def test_changelog_and_architecture_pages(site: pathlib.Path) -> None:
    changelog = page(site, "changelog")
    assert "Version 0.2.0" in changelog
    assert "Version 0.1.0" in changelog
    assert "One pipeline, every arrow pointing down" in page(site, "architecture")


# -- in Chromium ---------------------------------------------------------------


@pytest.fixture(scope="module")
def site_url(site: pathlib.Path) -> cabc.Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: t.Any) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> cabc.Iterator[Browser]:
    _need("playwright")
    yield from chromium()


@pytest.mark.browser
@pytest.mark.parametrize(
    ("path", "name", "heading", "text"),
    [
        pytest.param("/", "home", "flask-authgate", "Who is this, and may they do this?", id="home"),
        pytest.param("/api/", "api-reference", "API reference", "create_access_token", id="api"),
        pytest.param("/testing/", "testing", "Testing your app", "AuthGateClient", id="testing"),
    ],
)
def test_screenshot(browser: Browser, site_url: str, path: str, name: str, heading: str, text: str) -> None:
    outside: list[str] = []
    failed: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()

        def offline(route: t.Any, request: Request) -> None:
            if request.url.startswith(site_url):
                route.continue_()
            else:
                outside.append(request.url)
                route.abort()

        page.route("**/*", offline)
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        page.goto(site_url + path, wait_until="networkidle")
        assert page.locator("article h1").first.inner_text().rstrip("¶") == heading
        assert text in page.locator("article").inner_text()
        # The material layout is there: the navigation sidebar and the search box.
        assert page.locator("nav.md-nav--primary").count() >= 1
        assert page.locator("input.md-search__input").count() == 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    finally:
        context.close()
    assert outside == [], "the site must work offline"
    assert [u for u in failed if u.startswith(site_url)] == []
