"""``flask authgate ...``: the route audit and development tokens."""

from __future__ import annotations

import json
import secrets
import sys
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from ._state import get_state
from .errors import AuthError
from .requirements import is_public
from .requirements import misplaced_requirement
from .requirements import requirement_of
from .rules import blueprint_names
from .rules import is_static

if t.TYPE_CHECKING:
    from .requirements import Requirement

authgate_cli = AppGroup("authgate", help="flask-authgate: audit routes, issue and revoke development tokens.")

_AUTO = {"HEAD", "OPTIONS"}


def _describe(req: Requirement) -> list[str]:
    out = []
    if req.networks:
        out += ["ip " + " | ".join(",".join(str(n) for n in group) for group in req.networks)]
    if req.token_type == "refresh":
        out.append("refresh token")
    elif req.needs_login and not req.checks_identity:
        out.append("login")
    if req.fresh:
        out.append("fresh login")
    if req.step_up:
        out.append("step-up" + (": " + ", ".join(req.acr_values) if req.acr_values else ""))
    if req.roles_all:
        out.append("roles all: " + ", ".join(sorted(req.roles_all)))
    for group in req.roles_any:
        out.append("roles any: " + ", ".join(sorted(group)))
    if req.scopes_all:
        out.append("scopes: " + ", ".join(sorted(req.scopes_all)))
    for group in req.scopes_any:
        out.append("scopes any: " + ", ".join(sorted(group)))
    return out


def audit() -> list[dict[str, t.Any]]:
    """One row per URL rule of the current app: what guards it, and whether anything does."""
    app = current_app
    state = get_state()
    rows = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        endpoint = rule.endpoint
        view = app.view_functions.get(endpoint)
        methods = sorted(set(rule.methods or ()) - _AUTO) or sorted(rule.methods or ())
        guards: list[str] = []
        static = view is not None and is_static(state, view)
        public = view is not None and is_public(view)
        own = requirement_of(view) if view is not None else None
        misplaced = misplaced_requirement(view) if view is not None else None
        if misplaced is not None:
            guards.append("guard above @route (enforced by the app-wide hook)")
            own = misplaced
        # A MethodView may guard some methods and not others: judge each one.
        by_method = {m: requirement_of(view, m) for m in methods} if hasattr(view, "view_class") else {}
        if static:
            guards.append("static files")
        if state.settings.access.ip_allowlist is not None:
            guards.append("app ip allow list")
        if public:
            guards.append("public")
        if own is not None and len(set(by_method.values())) > 1:
            for m, req in by_method.items():
                guards += [f"{m}: {g}" for g in _describe(req)] if req is not None else [f"{m}: none"]
        elif own is not None:
            guards += _describe(own)
        own_covers = own is not None and None not in by_method.values()
        if not static and not public:
            for name in blueprint_names(endpoint):
                bp_rule = state.rules.rule_of(app, name)
                if bp_rule is not None:
                    guards += [f"blueprint {name}: {g}" for g in _describe(bp_rule)]
            if state.settings.access.default_deny:
                guards.append("default deny")
        unguarded = not (static or public or own_covers or any(g.startswith(("blueprint", "default")) for g in guards))
        rows.append(
            {"endpoint": endpoint, "rule": rule.rule, "methods": methods, "guards": guards, "unguarded": unguarded}
        )
    return rows


@authgate_cli.command("routes")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--fail-on-unguarded", is_flag=True, help="Exit 1 if any endpoint has no guard and is not @public.")
@click.option("--check-openapi", is_flag=True, help="Exit 1 if the OpenAPI spec and the guards disagree.")
def routes_command(as_json: bool, fail_on_unguarded: bool, check_openapi: bool) -> None:
    """List every endpoint with its methods and what guards it; flag what nothing guards."""
    if check_openapi:
        from .openapi import check

        problems = check(current_app)
        for line in problems:
            click.echo(f"error: {line}", err=True)
        if problems:
            sys.exit(1)
        click.echo("OpenAPI spec matches the guards")
        return
    rows = audit()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        width = max([len(r["rule"]) for r in rows] + [4])
        ep_width = max([len(r["endpoint"]) for r in rows] + [8])
        click.echo(f"{'RULE':<{width}}  {'ENDPOINT':<{ep_width}}  {'METHODS':<18}  GUARDS")
        for r in rows:
            guards = "; ".join((["UNGUARDED"] if r["unguarded"] else []) + r["guards"])
            click.echo(f"{r['rule']:<{width}}  {r['endpoint']:<{ep_width}}  {','.join(r['methods']):<18}  {guards}")
        bad = [r for r in rows if r["unguarded"]]
        click.echo(f"\n{len(rows)} endpoint(s), {len(bad)} unguarded")
    if fail_on_unguarded and any(r["unguarded"] for r in rows):
        if not as_json:
            click.echo("error: unguarded endpoints found (mark intentionally open views @public)", err=True)
        sys.exit(1)


@authgate_cli.command("token")
@click.argument("subject")
@click.option("--role", "roles", multiple=True, help="A role (repeat for several).")
@click.option("--scope", "scopes", multiple=True, help="A scope (repeat for several).")
@click.option("--expires", type=click.IntRange(min=1), default=None, help="Lifetime in seconds.")
@click.option("--refresh", is_flag=True, help="Issue a refresh token instead of an access token.")
@click.option("--fresh", is_flag=True, help="Mark the access token fresh.")
def token_command(
    subject: str, roles: tuple[str, ...], scopes: tuple[str, ...], expires: int | None, refresh: bool, fresh: bool
) -> None:
    """Print a token for SUBJECT, for development and tests."""
    state = get_state()
    try:
        token = state.tokens.issue(
            subject,
            "refresh" if refresh else "access",
            roles=roles,
            scopes=scopes,
            expires_in=expires,
            fresh=fresh and not refresh,
            # A refresh token starts a family, as gate.create_refresh_token() does (reuse detection).
            family=secrets.token_urlsafe(12) if refresh else None,
        )
    except (TypeError, ValueError, RuntimeError) as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(token)


@authgate_cli.command("revoke")
@click.argument("token")
def revoke_command(token: str) -> None:
    """Revoke TOKEN (by its jti) in the configured revocation store (Redis: the CLI is its own process)."""
    state = get_state()
    try:
        entry = state.tokens.inspect(token)
    except AuthError as err:
        raise click.ClickException(f"not a valid token for this app ({err.error_code})") from None
    if entry is None:
        click.echo("token already expired; nothing to revoke")
        return
    if entry.identity.token_id is None:
        raise click.ClickException("token has no jti; revoke its subject instead")
    if state.memory_revocations:
        # The in-memory store lives in this CLI process only: no running server would ever see
        # the revocation, so reporting success would be a lie.
        raise click.ClickException(
            "AUTHGATE_REVOCATION_STORE is 'memory': a revocation made by this command lives in this "
            "process only and no running server would see it. Configure a shared store (redis://...) "
            "or call gate.revoke(token) inside the server"
        )
    try:
        state.revocations.revoke_token(entry.identity.token_id, entry.exp)
    except AuthError as err:
        raise click.ClickException(f"revocation store unavailable ({err.error_code})") from None
    click.echo(f"revoked jti {entry.identity.token_id} (subject {entry.identity.subject})")
