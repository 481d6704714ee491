"""Rendering of the login pages: Jinja2 templates, language, security headers, cookies, forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from cityos.auth.login.messages import MESSAGES, pick_language

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM = 16 * 1024
CSS_PATH = "/auth/static/login.css"
PRE_SESSION_TTL = 3600

# RFC 6749 §10.13 / RFC 9700 §4.16: no framing (clickjacking); only our own CSS, no scripts
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


def render(request: Request, template: str, status: int = 200, /, **context: Any) -> HTMLResponse:
    lang = pick_language(request.headers.get("accept-language"))
    html = _env.get_template(template).render(t=MESSAGES[lang], lang=lang, css=CSS_PATH, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_page(request: Request, status: int, message_key: str | None = None,
               detail: str = "") -> HTMLResponse:
    """An error shown to the user (never a redirect: the target may be an attacker's)."""
    return render(request, "error.html", status, message_key=message_key, detail=detail)


async def stylesheet(request: Request) -> Response:
    css = (TEMPLATES / "login.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css",
                    headers={"cache-control": "public, max-age=3600",
                             "x-content-type-options": "nosniff"})


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind our forms send)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


class Cookies:
    """Names and flags of the SSO and pre-session cookies (``__Host-`` on https, RFC 6265bis)."""

    def __init__(self, public_url: str) -> None:
        self.secure = public_url.startswith("https://")
        prefix = "__Host-" if self.secure else ""
        self.session = prefix + "cityos_sso"
        self.pre = prefix + "cityos_pre"

    def set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure,
                            httponly=True, samesite="lax")

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a relative ``/auth/authorize?…`` URL (no open redirect), else None."""
    if not value or len(value) > 4096 or not value.startswith("/auth/authorize?"):
        return None
    if any(c in value for c in ("\\", "\r", "\n", "\t")) or value.startswith("//"):
        return None
    return value
