"""Notification delivery: the outbox dispatcher, HTTP and MQTT senders, retries, SSRF policy.

:class:`Notifier` (dispatcher.py) is what the composition root starts; :class:`EndpointPolicy`
(policy.py) is also used by the subscription API to refuse endpoints when they are written.
"""

from cityos.data.ngsild.notify.dispatcher import Notifier
from cityos.data.ngsild.notify.policy import EndpointPolicy

__all__ = ["EndpointPolicy", "Notifier"]
