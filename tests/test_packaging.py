"""The package as a user gets it: the built wheel in a clean venv runs the README quickstart verbatim,
and the sdist carries tests that run.

Slow (a venv and a pip install), but part of ``make test``. The wheel and the
sdist are built once, without an isolated build environment (``flit_core``
is in the ``dist`` dependency group), and the clean venv gets the runtime
dependencies through pip as a user would (its cache makes a second run fast).
"""

from __future__ import annotations

import email.parser
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_quickstart() -> str:
    """The first ```python block under "## Quickstart" in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```python\n(.*?)^```$", section, re.M | re.S)
    assert match is not None, "README.md has no python block under ## Quickstart"
    return match[1]


def run(args: list[str], *, cwd: pathlib.Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    pytest.importorskip("build")
    pytest.importorskip("flit_core")
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], cwd=ROOT)
    return out


def only(dist: pathlib.Path, pattern: str) -> pathlib.Path:
    found = list(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_wheel_metadata(dist: pathlib.Path) -> None:
    wheel = only(dist, "*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(info).decode())
        entry_points = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "flask_authgate/py.typed" in names
    assert "flask_authgate/testing.py" in names
    assert not [n for n in names if n.startswith(("tests/", "docs/"))]  # those are for the sdist
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert sorted(u.split(",")[0] for u in meta.get_all("Project-URL", [])) == [
        "Changelog",
        "Documentation",
        "Issues",
        "Source",
    ]
    classifiers = meta.get_all("Classifier", [])
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    # Published extras only; the development tools are dependency groups.
    assert sorted(meta.get_all("Provides-Extra", [])) == ["async", "crypto", "otel", "redis"]
    assert re.search(r"^\[pytest11\]\nflask_authgate ?= ?flask_authgate\.pytest_plugin$", entry_points, re.M)


def test_wheel_runs_the_readme_quickstart_in_a_clean_venv(dist: pathlib.Path, tmp_path: pathlib.Path) -> None:
    wheel = only(dist, "*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([python, "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path, env=env)
    app = tmp_path / "app.py"
    app.write_text(readme_quickstart(), encoding="utf-8")
    out = run([python, str(app)], cwd=tmp_path, env=env, timeout=60)
    assert out.splitlines() == ["401", "{'hello': 'alice'}"]
    where = run([python, "-c", "import flask_authgate; print(flask_authgate.__file__)"], cwd=tmp_path, env=env)
    assert where.startswith(str(venv)), where  # the installed wheel, not this checkout


def test_sdist_tests_run(dist: pathlib.Path, tmp_path: pathlib.Path) -> None:
    sdist = only(dist, "*.tar.gz")
    with tarfile.open(sdist) as tf:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+: refuse links and paths out of the target
            tf.extractall(tmp_path, filter="data")
        else:  # pragma: no cover
            tf.extractall(tmp_path)  # noqa: S202 - our own sdist, just built
    (src,) = tmp_path.iterdir()
    for needed in ("tests/conftest.py", "docs/testing.md", "README.md", "example_app/__init__.py", "mkdocs.yml"):
        assert (src / needed).is_file(), needed
    assert not list(src.rglob("__pycache__"))
    # `python -m pytest` puts the unpacked directory first on sys.path: its package is the one tested.
    where = run([sys.executable, "-c", "import flask_authgate; print(flask_authgate.__file__)"], cwd=src)
    assert where.strip() == str(src / "flask_authgate" / "__init__.py")
    out = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_contract.py",
            "tests/test_errors.py",
            "tests/test_docs_examples.py",
        ],
        cwd=src,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary), out
    assert not re.search(r"\b\d+ (failed|errors?)\b", summary), out
