"""The resident's consent page (HTML, Japanese or English by ``Accept-Language``).

The withdraw buttons are plain form POSTs to ``/me/consents/{id}/withdraw`` (no script, so the
page works under ``Content-Security-Policy: default-src 'self'``).  The CSRF field of ADR 0012 §5
is added by the login block's form helper once it exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

from cityos.auth.consent.receipt import JST, iso_seconds

TEXTS: dict[str, dict[str, str]] = {
    "ja": {"title": "同意の管理", "intro": "あなたの個人データの提供先と利用目的ごとの同意です。"
           "撤回するとすぐに提供が止まります。", "none": "同意はまだありません。",
           "organization": "提供先", "purpose": "利用目的", "category": "データの種類",
           "state": "状態", "given": "同意日時", "expires": "有効期限", "until_withdrawn": "撤回まで",
           "withdraw": "撤回する", "receipt": "同意レシート", "given_state": "同意中",
           "withdrawn_state": "撤回済み", "expired_state": "期限切れ", "refused_state": "拒否"},
    "en": {"title": "Your consents", "intro": "Consents you gave per service provider and purpose. "
           "Withdrawing one stops the provision at once.", "none": "You have given no consent yet.",
           "organization": "Provider", "purpose": "Purpose", "category": "Data category",
           "state": "State", "given": "Given", "expires": "Expires",
           "until_withdrawn": "until withdrawn", "withdraw": "Withdraw", "receipt": "Receipt",
           "given_state": "given", "withdrawn_state": "withdrawn", "expired_state": "expired",
           "refused_state": "refused"},
}

_TEMPLATE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ t.title }} - CityOS</title></head>
<body><main><h1>{{ t.title }}</h1><p>{{ t.intro }}</p>
{% if not rows %}<p>{{ t.none }}</p>{% else %}
<table><thead><tr><th>{{ t.organization }}</th><th>{{ t.purpose }}</th><th>{{ t.category }}</th>
<th>{{ t.state }}</th><th>{{ t.given }}</th><th>{{ t.expires }}</th><th></th></tr></thead><tbody>
{% for r in rows %}<tr><td>{{ r.organization }}</td><td>{{ r.purpose }}</td><td>{{ r.category }}</td>
<td>{{ t[r.state + '_state'] }}</td><td>{{ r.given }}</td><td>{{ r.expires or t.until_withdrawn }}</td>
<td><a href="/me/consents/{{ r.id }}/receipt">{{ t.receipt }}</a>
{% if r.state == 'given' %}<form method="post" action="/me/consents/{{ r.id }}/withdraw">
<button type="submit">{{ t.withdraw }}</button></form>{% endif %}</td></tr>
{% endfor %}</tbody></table>{% endif %}</main></body></html>
"""

_ENV = Environment(loader=DictLoader({"consents.html": _TEMPLATE}),
                   autoescape=select_autoescape(default=True, default_for_string=True))


def language(accept_language: str) -> str:
    """``ja`` or ``en``, whichever the caller ranks higher (RFC 9110 §12.5.4); English otherwise."""
    best, best_q = "en", -1.0
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in TEXTS and q > best_q and q > 0:
            best, best_q = primary, q - position * 1e-6   # earlier wins a tie
    return best


def render_page(records: Sequence[Any], accept_language: str, now: float) -> str:
    """The page for ``records`` (:class:`ConsentRecord`)."""
    lang = language(accept_language)
    rows: list[dict[str, Any]] = []
    for c in records:
        purpose = c.receipt.get("services", [{}])[0].get("purposes", [{}])[0].get("purpose")
        controller = c.receipt.get("piiControllers", [{}])[0].get("piiController")
        rows.append({"id": c.id, "organization": controller or c.processor_org,
                     "purpose": purpose or c.purpose, "category": c.category,
                     "state": c.state_at(now), "given": iso_seconds(c.given_at, JST),
                     "expires": iso_seconds(c.expires_at, JST)})
    return _ENV.get_template("consents.html").render(lang=lang, t=TEXTS[lang], rows=rows)
