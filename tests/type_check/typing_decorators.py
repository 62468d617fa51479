"""Checked by ``mypy --strict`` only (pytest does not collect this file): the guards keep view types.

Every guard returns the view it was given, typed as that view, so a sync view
stays sync, an ``async def`` view stays a coroutine function, and the
parameters survive. A guard that returned ``Any`` (or a wrapper typed
``Callable[..., Any]``) would make these ``assert_type`` calls fail.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t
from typing import assert_type

from flask.views import MethodView

from flask_authgate import fresh_login_required
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import refresh_token_required
from flask_authgate import roles_accepted
from flask_authgate import roles_required
from flask_authgate import scopes_required


@login_required
def bare(item_id: int) -> str:
    return str(item_id)


@login_required()
def called(item_id: int) -> str:
    return str(item_id)


@roles_required("admin")
@roles_accepted("editor", "owner")
@scopes_required("read write")
@ip_allowed("10.0.0.0/8")
def stacked(item_id: int, *, verbose: bool = False) -> dict[str, int]:
    return {"id": item_id}


@login_required
async def async_bare(item_id: int) -> str:
    return str(item_id)


@roles_required("admin")
@scopes_required("read")
async def async_stacked(item_id: int) -> list[str]:
    return [str(item_id)]


@refresh_token_required
def refresh() -> tuple[str, int]:
    return "ok", 200


@fresh_login_required
async def fresh() -> bytes:
    return b"ok"


@public
def open_view() -> str:
    return "ok"


class Items(MethodView):
    decorators: t.ClassVar[list[cabc.Callable[..., t.Any]]] = [login_required, roles_required("admin")]

    @scopes_required("write")
    def post(self, item_id: int) -> str:
        return str(item_id)


same_bare: cabc.Callable[[int], str] = bare
same_async: cabc.Callable[[int], cabc.Coroutine[t.Any, t.Any, str]] = async_bare
assert_type(bare(1), str)
assert_type(called(1), str)
assert_type(stacked(1, verbose=True), dict[str, int])
assert_type(refresh(), tuple[str, int])
assert_type(open_view(), str)
assert_type(Items().post(3), str)
assert_type(login_required(open_view)(), str)

# The parameters survive: these calls are type errors (with strict's warn_unused_ignores,
# an ignore that is not needed, because a guard erased the signature, is itself an error).
bare("1")  # type: ignore[arg-type]
stacked(1, colour=True)  # type: ignore[call-arg]


async def awaited() -> None:
    assert_type(await async_bare(1), str)
    assert_type(await async_stacked(1), list[str])
    assert_type(await fresh(), bytes)
