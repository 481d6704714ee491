"""SE  audit log, request limits, secrets (SE-1).

Public interface: :class:`AuditLog` (the ``audit_log`` table, a :class:`cityos.core.access.AuditSink`)
and ``AUDIT_ROUTES`` (``/me/audit``, ``/audit``, ``/audit/report``).
"""

from cityos.security.audit import AuditLog, AuditQuery, parse_retention
from cityos.security.routes import AUDIT_ROUTES

__all__ = ["AUDIT_ROUTES", "AuditLog", "AuditQuery", "parse_retention"]
