"""Consent receipts after the Kantara Initiative Consent Receipt Specification v1.1.

The receipt is built once, when the consent is given, from what the resident was shown (the
processor organization, the purpose's text and category, the data category, the termination), and
stored with the record, so it keeps saying what was agreed even if the client's purpose text
changes later.  Delivered as a JWT signed with the provider's current token key when one is
available (Kantara CR v1.1 §5: the receipt is a signed JSON Web Token), else as plain JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

CR_VERSION = "KI-CR-v1.1.0"
# 要配慮個人情報 (APPI Art. 2(3)): health data counts as special (sensitive) personal information
SENSITIVE_CATEGORIES = frozenset({"sensitive", "health"})
JST = timezone(timedelta(hours=9))


def iso_seconds(epoch: int | None, tz: timezone = UTC) -> str | None:
    """Epoch seconds as ISO 8601 (``Z`` for UTC)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz).isoformat().replace("+00:00", "Z")


def termination_text(expires_at: int | None) -> str:
    """Kantara's ``termination``: when or how the consent ends."""
    if expires_at is None:
        return "Until withdrawn by the PII principal at /me/consents"
    return f"Expires {iso_seconds(expires_at, JST)} or when withdrawn at /me/consents"


def build_receipt(*, receipt_id: str, owner_id: str, category: str, given_at: int,
                  expires_at: int | None, jurisdiction: str, collection_method: str,
                  policy_url: str | None, controller: str, controller_url: str | None,
                  service: str, purpose_text: str, purpose_category: str,
                  language: str = "ja") -> dict[str, Any]:
    """The Kantara CR v1.1 receipt (JSON) of one consent."""
    sensitive = category in SENSITIVE_CATEGORIES
    receipt: dict[str, Any] = {
        "version": CR_VERSION,
        "jurisdiction": jurisdiction,
        "consentTimestamp": given_at,          # CR v1.1: seconds since the epoch
        "collectionMethod": collection_method,
        "consentReceiptID": receipt_id,
        "language": language,
        "piiPrincipalId": owner_id,
        "piiControllers": [{"piiController": controller, "onBehalf": False,
                            "contact": controller,
                            **({"piiControllerUrl": controller_url} if controller_url else {})}],
        "policyUrl": policy_url or "",
        "services": [{"service": service, "purposes": [{
            "purpose": purpose_text,
            "purposeCategory": [purpose_category],
            "consentType": "EXPLICIT",
            "piiCategory": [category],
            "primaryPurpose": True,
            "termination": termination_text(expires_at),
            "thirdPartyDisclosure": False,
        }]}],
        "sensitive": sensitive,
        "spiCat": [category] if sensitive else [],
    }
    return receipt


def sign_receipt(tokens: Any, receipt: dict[str, Any]) -> str | None:
    """The receipt as a compact JWS signed with the current token key, or None without one.

    Uses ``tokens.sign_jws(payload)`` when the token service offers it, else its key set
    (``tokens.keys.signing_key() -> (kid, RSAKey)``); RS256 like the access tokens (ADR 0012 §4).
    """
    if tokens is None:
        return None
    signer = getattr(tokens, "sign_jws", None)
    if callable(signer):
        return str(signer(receipt))
    keys = getattr(tokens, "keys", None)
    if keys is None or not callable(getattr(keys, "signing_key", None)):
        return None
    from joserfc import jwt

    try:
        kid, key = keys.signing_key()
    except RuntimeError:        # no current key yet: plain JSON rather than an error
        return None
    return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": kid}, receipt, key)
