"""The admin API (``/admin/*``), the self-service profile (``/me``) and account erasure.

``admin_routes()`` is what the auth runtime mounts; :class:`ErasureSweep` is its part that
finishes interrupted erasures.  The operations behind the routes are plain functions of the
runtime (``routes_*.py``), shared with the local CLI ``cityos auth``.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from cityos.auth.admin.common import Caller
from cityos.auth.admin.erasure import ErasureSweep, erase_account


def admin_routes() -> list[BaseRoute]:
    """Every route of the admin API and of ``/me``."""
    from cityos.auth.admin import (
        routes_accounts,
        routes_clients,
        routes_me,
        routes_orgs,
        routes_policies,
    )

    return [*routes_orgs.ROUTES, *routes_accounts.ROUTES, *routes_policies.ROUTES,
            *routes_clients.ROUTES, *routes_me.ROUTES]


__all__ = ["Caller", "ErasureSweep", "admin_routes", "erase_account"]
