"""The browser side of the OpenID provider: login, SSO session, MFA, approval, logout (ADR 0012 §5-6)."""

from cityos.auth.login.part import LoginPart, build_login

__all__ = ["LoginPart", "build_login"]
