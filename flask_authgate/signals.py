"""Audit hooks: Flask (blinker) signals sent by the extension.

Each signal is sent with the app as sender. Receivers get keyword arguments:

* :data:`identity_loaded` — ``identity``, ``endpoint``: a request was authenticated.
* :data:`authentication_failed` — ``identity`` (``None``), ``error_code``, ``endpoint``:
  a guard answered 400/401 or an auth backend answered 503.
* :data:`access_denied` — ``identity`` (or ``None`` for ``ip_denied``),
  ``error_code``, ``endpoint``: a guard answered 403 or a hidden 404.

No token, key or secret is ever passed.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

identity_loaded = _signals.signal("authgate.identity-loaded")
authentication_failed = _signals.signal("authgate.authentication-failed")
access_denied = _signals.signal("authgate.access-denied")
