"""ED  the built-in IoT agent (ED-IF-1, ED-DP-1, ED-DT-1): FIWARE-compatible southbound.

Devices send JSON or UltraLight 2.0 measures over HTTP (``/iot/json``, ``/iot/d``) or MQTT
(``/json/{apikey}/{device}/attrs``, ``/{apikey}/{device}/attrs``); the agent transforms them
(renaming, types, units, expressions, locations, times) and writes them through the broker's batch
upsert as NGSI-LD attribute updates.  Public interface: the names in ``__all__``.
"""

from __future__ import annotations

from cityos.ingest.iot.expressions import ExpressionError, evaluate, parse_expression
from cityos.ingest.iot.runtime import IotRuntime
from cityos.ingest.iot.simulator import ENTITY_TYPE as SIMULATED_TYPE
from cityos.ingest.iot.simulator import measure, provision_group, run_simulation
from cityos.ingest.iot.southbound import ROUTES
from cityos.ingest.iot.ultralight import format_command, parse_command_result, parse_measures

__all__ = ["ROUTES", "SIMULATED_TYPE", "ExpressionError", "IotRuntime", "evaluate",
           "format_command", "measure", "parse_command_result", "parse_expression",
           "parse_measures", "provision_group", "run_simulation"]
