"""Consent records (SI-CS-6, DM-PD-1): residents give and withdraw consent per data category,
service provider and purpose; receipts after ISO/IEC TS 27560 and Kantara Consent Receipt v1.1.

:class:`ConsentStore` is the :class:`cityos.core.access.ConsentChecker` of the auth runtime;
``CONSENT_ROUTES`` serve ``/me/consents``.
"""

from cityos.auth.consent.routes import CONSENT_ROUTES
from cityos.auth.consent.store import ConsentRecord, ConsentStore

__all__ = ["CONSENT_ROUTES", "ConsentRecord", "ConsentStore"]
