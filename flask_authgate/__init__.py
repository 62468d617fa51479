"""flask-authgate: who is this, and may they do this? Answered with the right HTTP status."""

from .api_keys import generate_api_key as generate_api_key
from .api_keys import hash_api_key as hash_api_key
from .api_keys import verify_api_key as verify_api_key
from .authorization import authorize as authorize
from .authorization import require_owner as require_owner
from .decorators import fresh_login_required as fresh_login_required
from .decorators import ip_allowed as ip_allowed
from .decorators import login_required as login_required
from .decorators import public as public
from .decorators import refresh_token_required as refresh_token_required
from .decorators import roles_accepted as roles_accepted
from .decorators import roles_required as roles_required
from .decorators import scopes_accepted as scopes_accepted
from .decorators import scopes_required as scopes_required
from .decorators import step_up_required as step_up_required
from .errors import AuthError as AuthError
from .errors import ConfigError as ConfigError
from .extension import AuthGate as AuthGate
from .extension import TokenPair as TokenPair
from .identity import Identity as Identity
from .pipeline import current_identity as current_identity
from .pipeline import current_user as current_user
from .pipeline import get_identity as get_identity
from .revocation import MemoryStore as MemoryStore
from .revocation import RedisStore as RedisStore
from .revocation import RevocationStore as RevocationStore
from .signals import access_denied as access_denied
from .signals import authentication_failed as authentication_failed
from .signals import identity_loaded as identity_loaded

__all__ = [
    "AuthError",
    "AuthGate",
    "ConfigError",
    "Identity",
    "MemoryStore",
    "RedisStore",
    "RevocationStore",
    "TokenPair",
    "access_denied",
    "authentication_failed",
    "authorize",
    "current_identity",
    "current_user",
    "fresh_login_required",
    "generate_api_key",
    "get_identity",
    "hash_api_key",
    "identity_loaded",
    "ip_allowed",
    "login_required",
    "public",
    "refresh_token_required",
    "require_owner",
    "roles_accepted",
    "roles_required",
    "scopes_accepted",
    "scopes_required",
    "step_up_required",
    "verify_api_key",
]
