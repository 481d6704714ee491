"""NGSI-LD subscriptions (/subscriptions): parse, store, match changes, render notifications.

Public interface: :data:`ROUTES`, :class:`SubscriptionRegistry` (the composition root builds one,
loads it at start-up and hands it to the broker and the notifier), :func:`render_notification`,
and the shared model (:class:`Subscription`, :class:`NotifyItem`, :class:`Counters`).
"""

from __future__ import annotations

from cityos.data.ngsild.subscriptions.model import Counters, NotifyItem, Subscription
from cityos.data.ngsild.subscriptions.registry import SubscriptionRegistry
from cityos.data.ngsild.subscriptions.render import render_notification
from cityos.data.ngsild.subscriptions.routes import ROUTES

__all__ = ["ROUTES", "Counters", "NotifyItem", "Subscription", "SubscriptionRegistry",
           "render_notification"]
