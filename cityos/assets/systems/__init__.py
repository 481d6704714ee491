"""AS-SY-1 / ED-IF-1  external systems: other systems (FIWARE Orion, NGSI-LD brokers, JSON APIs,
CSV and GeoJSON files on the web) registered with CityOS and pulled into entities on a schedule.

Public interface: :data:`ROUTES` (``/assets/v1/systems``), :class:`SystemScheduler` (started by
the composition root) and the actions the CLI uses.
"""

from __future__ import annotations

from cityos.assets.systems.actions import (
    delete_system,
    get_system,
    list_systems,
    register_system,
    run_system,
)
from cityos.assets.systems.model import KINDS
from cityos.assets.systems.routes import ROUTES
from cityos.assets.systems.scheduler import SystemScheduler

__all__ = ["KINDS", "ROUTES", "SystemScheduler", "delete_system", "get_system", "list_systems",
           "register_system", "run_system"]
