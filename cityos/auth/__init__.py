"""AU  authentication: accounts, roles, policies, OAuth 2.0 / OpenID Connect (AU-AA-*, AU-UM-*).

Not built yet."""
