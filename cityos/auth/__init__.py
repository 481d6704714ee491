"""AU  authentication and authorization: accounts, organizations, roles, policies, the built-in
OAuth 2.0 / OpenID Connect provider, login and MFA, consent (AU-AA-*, AU-UM-*, SI-CS-6, DM-PD-1).

Other blocks never import this package: they see ``cityos.core.access`` (who is calling, what
they may see).  The composition root builds the runtime with :func:`build_auth`.
"""

from cityos.auth.routes_actions import OPEN, SELF, action_of
from cityos.auth.runtime import AuthRuntime, build_auth, public_url_of

__all__ = ["OPEN", "SELF", "AuthRuntime", "action_of", "build_auth", "public_url_of"]
