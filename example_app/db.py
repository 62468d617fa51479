"""The example's storage: SQLite through the standard library, one connection per request.

Users have a Werkzeug password hash, any number of roles and a demo second
factor (a fixed six-digit code, hashed like a password: a stand-in for TOTP or
WebAuthn, see ``auth.step_up``); notes belong to one user. ``flask --app example_app seed`` resets the database to the demo
data and prints the logins.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sqlite3
import typing as t

import click
from flask import Flask
from flask import current_app
from flask import g
from flask.cli import with_appcontext
from werkzeug.security import generate_password_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_roles (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);
CREATE TABLE IF NOT EXISTS second_factors (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);
"""

#: The demo users: username, password, roles, note titles and bodies.
#: Seeded in this order, so the ids are fixed: admin 1, alice 2, bob 3;
#: alice's notes 1 and 2, bob's note 3, admin's note 4.
DEMO_USERS: tuple[tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]], ...] = (
    ("admin", "admin-password", ("admin",), ()),
    (
        "alice",
        "alice-password",
        ("user",),
        (("Shopping list", "Milk, eggs, coffee"), ("Ideas", "A Flask extension that gets 401 and 403 right")),
    ),
    ("bob", "bob-password", ("user",), (("Bob's plans", "Only Bob may read this note"),)),
)
DEMO_ADMIN_NOTES = (("Quarterly numbers", "Revenue is up"),)
#: The demo second factor of each user: a fixed code that the step-up login asks for.
#: A real app checks a TOTP code (RFC 6238) or a WebAuthn assertion instead.
DEMO_SECOND_FACTORS = {"admin": "314159", "alice": "271828", "bob": "161803"}


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    """A user row with its roles."""

    id: int
    username: str
    password_hash: str
    roles: frozenset[str]

    def public(self) -> dict[str, t.Any]:
        """What the API shows about a user (never the hash)."""
        return {"id": str(self.id), "username": self.username, "roles": sorted(self.roles)}


def connect(path: str) -> sqlite3.Connection:
    """A connection with rows as mappings and foreign keys enforced."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def get_db() -> sqlite3.Connection:
    """The connection of the current request (created, with the schema, on first use)."""
    conn: sqlite3.Connection | None = g.get("_example_db")
    if conn is None:
        path = current_app.config["DATABASE"]
        conn = g._example_db = connect(path)
        ready: set[str] = current_app.extensions.setdefault("example_db_ready", set())
        if path not in ready:  # an unseeded database still works, empty
            conn.executescript(SCHEMA)
            ready.add(path)
    return conn


def close_db(_exc: BaseException | None = None) -> None:
    conn: sqlite3.Connection | None = g.pop("_example_db", None)
    if conn is not None:
        conn.close()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _user(row: sqlite3.Row | None) -> User | None:
    if row is None:
        return None
    roles = get_db().execute("SELECT role FROM user_roles WHERE user_id = ?", (row["id"],)).fetchall()
    return User(row["id"], row["username"], row["password_hash"], frozenset(r["role"] for r in roles))


def user_by_id(user_id: int) -> User | None:
    return _user(get_db().execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())


def user_by_name(username: str) -> User | None:
    return _user(get_db().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone())


def second_factor_hash(user_id: int) -> str | None:
    """The hash of the user's second-factor code, or ``None`` when the user has none."""
    row = get_db().execute("SELECT code_hash FROM second_factors WHERE user_id = ?", (user_id,)).fetchone()
    return t.cast(str, row["code_hash"]) if row is not None else None


def all_users() -> list[dict[str, t.Any]]:
    rows = get_db().execute(
        "SELECT u.*, COUNT(n.id) AS notes FROM users u LEFT JOIN notes n ON n.owner_id = u.id GROUP BY u.id ORDER BY u.id"
    )
    return [{**t.cast(User, _user(row)).public(), "notes": row["notes"]} for row in rows.fetchall()]


def set_password(user_id: int, password: str) -> None:
    db = get_db()
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (generate_password_hash(password), user_id))
    db.commit()


def note_dict(row: sqlite3.Row) -> dict[str, t.Any]:
    return {
        "id": row["id"],
        "owner_id": str(row["owner_id"]),
        "title": row["title"],
        "body": row["body"],
        "updated_at": row["updated_at"],
    }


def get_note(note_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = get_db().execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
    return row


def notes_of(owner_id: int) -> list[dict[str, t.Any]]:
    rows = get_db().execute("SELECT * FROM notes WHERE owner_id = ? ORDER BY id", (owner_id,)).fetchall()
    return [note_dict(r) for r in rows]


def create_note(owner_id: int, title: str, body: str) -> dict[str, t.Any]:
    db = get_db()
    stamp = now()
    cur = db.execute(
        "INSERT INTO notes (owner_id, title, body, updated_at) VALUES (?, ?, ?, ?)", (owner_id, title, body, stamp)
    )
    db.commit()
    return {"id": cur.lastrowid, "owner_id": str(owner_id), "title": title, "body": body, "updated_at": stamp}


def update_note(row: sqlite3.Row, title: str, body: str) -> dict[str, t.Any]:
    db = get_db()
    stamp = now()
    db.execute("UPDATE notes SET title = ?, body = ?, updated_at = ? WHERE id = ?", (title, body, stamp, row["id"]))
    db.commit()
    return {**note_dict(row), "title": title, "body": body, "updated_at": stamp}


def delete_note(note_id: int) -> None:
    db = get_db()
    db.execute("DELETE FROM notes WHERE id = ?", (note_id,))
    db.commit()


def delete_notes_of(owner_id: int) -> int:
    """Delete every note of ``owner_id``; return how many there were."""
    db = get_db()
    cur = db.execute("DELETE FROM notes WHERE owner_id = ?", (owner_id,))
    db.commit()
    return cur.rowcount


def counts() -> dict[str, int]:
    db = get_db()
    users = db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    notes = db.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
    return {"users": int(users), "notes": int(notes)}


def seed(path: str) -> None:
    """Reset the database at ``path`` to the demo users and notes."""
    conn = connect(path)
    try:
        conn.executescript(
            "DROP TABLE IF EXISTS notes; DROP TABLE IF EXISTS second_factors; "
            "DROP TABLE IF EXISTS user_roles; DROP TABLE IF EXISTS users;"
        )
        conn.executescript(SCHEMA)
        stamp = now()
        for username, password, roles, notes in DEMO_USERS:
            cur = conn.execute(
                "INSERT INTO users (username, password_hash) VALUES (?, ?)",
                (username, generate_password_hash(password)),
            )
            conn.executemany(
                "INSERT INTO user_roles (user_id, role) VALUES (?, ?)", [(cur.lastrowid, r) for r in roles]
            )
            conn.execute(
                "INSERT INTO second_factors (user_id, code_hash) VALUES (?, ?)",
                (cur.lastrowid, generate_password_hash(DEMO_SECOND_FACTORS[username])),
            )
            conn.executemany(
                "INSERT INTO notes (owner_id, title, body, updated_at) VALUES (?, ?, ?, ?)",
                [(cur.lastrowid, title, body, stamp) for title, body in notes],
            )
        conn.executemany(
            "INSERT INTO notes (owner_id, title, body, updated_at) VALUES (1, ?, ?, ?)",
            [(title, body, stamp) for title, body in DEMO_ADMIN_NOTES],
        )
        conn.commit()
    finally:
        conn.close()


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Reset the example database to the demo users and notes, and print the logins."""
    path = current_app.config["DATABASE"]
    seed(path)
    click.echo(f"Seeded the demo database at {path}")
    click.echo("Demo logins (username / password, roles, second-factor code for the step-up login):")
    for username, password, roles, _notes in DEMO_USERS:
        click.echo(f"  {username:<6} / {password:<15} {', '.join(roles):<6} {DEMO_SECOND_FACTORS[username]}")


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
    app.cli.add_command(seed_command)
