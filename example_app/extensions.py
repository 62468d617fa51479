"""The app's extensions, created once and set up in ``create_app`` (the app-factory pattern)."""

from __future__ import annotations

from flask_authgate import AuthGate

#: The flask-authgate extension: ``gate.init_app(app)`` in ``create_app``.
gate = AuthGate()
