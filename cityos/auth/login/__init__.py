"""The browser side of the OpenID provider: login, SSO session, MFA, approval, logout (ADR 0012 §5-6)."""

from cityos.auth.login.part import LoginPart, build_login
from cityos.auth.login.totp import new_recovery_codes, new_secret

__all__ = ["LoginPart", "build_login", "new_recovery_codes", "new_secret"]
