"""DM  the NGSI v2 API (FIWARE Orion's), a second face on the NGSI-LD broker's data (DM-BR-2, §9).

Public interface: :data:`ROUTES` (mounted by the composition root), :func:`render_entity`
(an internal entity in v2 JSON), :func:`install_subscriptions` (the composition root calls it
once so that ``/v2/subscriptions`` live in the NGSI-LD registry and notifier; it returns the
face's :class:`V2Names`, kept as ``app.state.v2_names``) and :func:`resolve_names` (at start-up:
the ``CITYOS_V2_CONTEXT`` term map, :class:`V2ContextError` when it cannot be resolved).
For a notifier in a process of its own (ADR 0017): :func:`stored_form` (in the server),
:func:`dispatcher_face` (in the dispatcher) and :func:`deactivate_oneshot` (in the server, when
the dispatcher reports that a oneshot subscription fired).
See ADR 0008 and ``docs/ngsiv2.md``.
"""

from __future__ import annotations

from cityos.data.ngsiv2.names import V2ContextError, V2Names
from cityos.data.ngsiv2.render import KEY_VALUES, NORMALIZED, VALUES, render_entity
from cityos.data.ngsiv2.routes_attrs import ROUTES as _ATTRS
from cityos.data.ngsiv2.routes_entities import ROUTES as _ENTITIES
from cityos.data.ngsiv2.routes_meta import ROUTES as _META
from cityos.data.ngsiv2.routes_ops import ROUTES as _OPS
from cityos.data.ngsiv2.routes_subs import ROUTES as _SUBSCRIPTIONS
from cityos.data.ngsiv2.sub_actions import (
    deactivate_oneshot,
    dispatcher_face,
    install_subscriptions,
    resolve_names,
    stored_form,
)
from cityos.data.ngsiv2.sub_parse import V2_FACE
from cityos.data.ngsiv2.unserved import unserved_routes

_SERVED = [*_META, *_ENTITIES, *_ATTRS, *_OPS, *_SUBSCRIPTIONS]
# last: trailing slashes, wrong methods and unknown paths answered as Orion does
ROUTES = [*_SERVED, *unserved_routes(_SERVED)]

__all__ = ["KEY_VALUES", "NORMALIZED", "ROUTES", "V2_FACE", "VALUES", "V2ContextError", "V2Names",
           "deactivate_oneshot", "dispatcher_face", "install_subscriptions", "render_entity",
           "resolve_names", "stored_form"]
