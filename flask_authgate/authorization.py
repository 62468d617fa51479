"""Rules checked inside a view: ``authorize()`` and ``require_owner()``.

Both first need an identity (401 for an anonymous caller, so whether a record
exists is never revealed to someone who has not authenticated), then refuse
with 403, or with a 404 that is byte-identical to the app's own 404 when the
resource must stay hidden. The refusal goes through the pipeline's one
reporting point, like every other.
"""

from __future__ import annotations

from . import pipeline
from .errors import AuthError


def authorize(allowed: bool, *, hide: bool = False) -> None:
    """Refuse the request unless ``allowed``; call it inside a view for any rule.

    An anonymous caller gets 401 first (the stored failure or
    ``token_missing``). Then, if ``allowed`` is false: 403 ``forbidden``, or
    404 ``not_found`` with ``hide=True`` — the same body and headers as the
    app's own 404 for a missing record.

    Works in sync and ``async def`` views.

    .. versionadded:: 0.1
    """
    identity = pipeline.identity_or_401()
    if not allowed:
        pipeline.deny(AuthError("not_found" if hide else "forbidden", reason="authorize"), identity)


def require_owner(owner_id: object, *, hide: bool = False) -> None:
    """Refuse the request unless ``owner_id`` is the caller's subject.

    401 for an anonymous caller, then 403 ``not_owner`` (or 404 ``not_found``
    with ``hide=True``) when ``str(owner_id)`` differs from
    :attr:`Identity.subject <flask_authgate.Identity.subject>`. For roles that
    may bypass ownership (an admin reading anyone's record) write the rule
    explicitly: ``authorize(owner == me or "admin" in current_identity.roles)``.

    .. versionadded:: 0.1
    """
    identity = pipeline.identity_or_401()
    if owner_id is None or str(owner_id) != identity.subject:
        pipeline.deny(AuthError("not_found" if hide else "not_owner", reason="owner"), identity)
