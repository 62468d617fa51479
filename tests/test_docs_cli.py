"""``docs/cli.md``'s console example, run as written against the example app (issue 9 item 17).

The example app is seeded into a temporary database and served on a free
127.0.0.1 port by Werkzeug's real server; the two console lines of the page
run in a shell, only ``localhost:5000`` pointed at that port.
"""

from __future__ import annotations

import collections.abc as cabc
import json
import os
import pathlib
import re
import subprocess
import sys
import threading

import pytest
from werkzeug.serving import make_server

from example_app import create_app

REPO = pathlib.Path(__file__).resolve().parent.parent
FLASK = str(pathlib.Path(sys.executable).with_name("flask"))


def console_lines(page: str) -> list[str]:
    text = (REPO / "docs" / page).read_text()
    block = re.search(r"```console\n(.*?)```", text, re.S)
    assert block is not None
    return [line[2:] for line in block.group(1).splitlines() if line.startswith("$ ")]


@pytest.fixture
def served(tmp_path: pathlib.Path) -> cabc.Iterator[tuple[str, dict[str, str]]]:
    env = {
        **os.environ,
        "FLASK_DATABASE": str(tmp_path / "example.sqlite"),
        "FLASK_SECRET_KEY": "docs-cli-" + "k" * 40,
        "PATH": f"{pathlib.Path(FLASK).parent}:{os.environ['PATH']}",
    }
    subprocess.run([FLASK, "--app", "example_app", "seed"], env=env, cwd=REPO, check=True, capture_output=True)
    app = create_app({"DATABASE": env["FLASK_DATABASE"], "SECRET_KEY": env["FLASK_SECRET_KEY"]})
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}", env
    server.shutdown()
    thread.join(5)


def test_the_console_example_of_docs_cli_works_against_the_example_app(served: tuple[str, dict[str, str]]) -> None:
    address, env = served
    token_line, curl_line = console_lines("cli.md")
    token = subprocess.run(token_line, shell=True, env=env, cwd=REPO, capture_output=True, text=True, check=True)  # noqa: S602
    assert token.stdout.count(".") == 2 and token.stderr == ""
    reply = subprocess.run(  # noqa: S602 - the page's own command line
        curl_line.replace("localhost:5000", address), shell=True, env=env, cwd=REPO, capture_output=True, text=True
    )
    assert reply.returncode == 0, reply.stderr
    users = json.loads(reply.stdout)["users"]
    assert [u["username"] for u in users] == ["admin", "alice", "bob"]
