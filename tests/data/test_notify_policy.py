"""The SSRF guard for notification endpoints (notify/policy.py)."""

from __future__ import annotations

import re

import pytest

from cityos.core.problems import BadRequestData
from cityos.core.settings import Settings
from cityos.data.ngsild.notify.policy import EndpointPolicy, is_private_address, parse_address

DEFAULT = EndpointPolicy.from_settings(Settings())


@pytest.mark.parametrize("uri", [
    "http://example.com/notify",
    "https://receiver.example.jp:8443/ngsi?x=1",
    "mqtt://broker.example.jp:1883/city/parking",
    "mqtts://broker.example.jp/city/parking",
    "http://8.8.8.8/",
    "http://[2606:4700::1111]:8080/",
])
def test_public_endpoints_pass(uri: str) -> None:
    DEFAULT.check(uri)


@pytest.mark.parametrize(("uri", "message"), [
    ("ftp://example.com/x", "scheme 'ftp' is not supported"),
    ("example.com/x", "scheme '(none)' is not supported"),
    ("file:///etc/passwd", "scheme 'file' is not supported"),
    ("http:///x", "has no host"),
    ("http://example.com:99999/", "malformed port"),
    ("http://example.com:http/", "malformed port"),
    ("http://example.com:0/", "port 0"),
    ("mqtt://broker.example.jp:1883", "names no MQTT topic"),
    ("mqtt://broker.example.jp/a/#", "wildcards"),
    ("mqtt://broker.example.jp/a/+/b", "wildcards"),
])
def test_malformed_endpoints_are_refused(uri: str, message: str) -> None:
    with pytest.raises(BadRequestData, match=re.escape(message)):
        DEFAULT.check(uri)


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:8080/",
    "http://127.1/",                       # legacy IPv4 spellings resolvers accept
    "http://2130706433/",
    "http://0x7f.0.0.1/",
    "http://localhost:8080/",
    "http://api.localhost/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",   # cloud metadata
    "http://100.64.0.1/",                  # CGNAT
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fd12:3456::1]/",              # IPv6 unique local
    "http://[fe80::1%25eth0]/",
    "http://[::ffff:127.0.0.1]/",          # IPv4-mapped
    "http://[2002:7f00:1::]/",             # 6to4 carrying 127.0.0.1
    "mqtt://127.0.0.1:1883/topic",
])
def test_private_addresses_are_refused_by_default(uri: str) -> None:
    with pytest.raises(BadRequestData, match="CITYOS_NOTIFICATION_ALLOW"):
        DEFAULT.check(uri)


def test_allow_list_wins_over_deny_list() -> None:
    policy = EndpointPolicy(allow="127.0.0.1, 10.1.0.0/16, *.internal.example.jp, sidecar",
                            deny="private")
    policy.check("http://127.0.0.1:9999/")
    policy.check("http://10.1.200.3/")
    policy.check("http://a.internal.example.jp/")
    policy.check("http://sidecar:8080/")
    with pytest.raises(BadRequestData):
        policy.check("http://10.2.0.1/")
    with pytest.raises(BadRequestData):
        policy.check("http://127.0.0.2/")


def test_deny_names_and_networks() -> None:
    policy = EndpointPolicy(deny="evil.example.com, *.corp.example.com, 203.0.113.0/24")
    policy.check("http://127.0.0.1/")      # 'private' not in this deny list
    for uri in ("http://evil.example.com/", "http://EVIL.example.com./", "http://x.corp.example.com/",
                "http://203.0.113.9/"):
        with pytest.raises(BadRequestData, match="deny list"):
            policy.check(uri)


def test_empty_deny_list_denies_nothing() -> None:
    EndpointPolicy(deny="").check("http://127.0.0.1/")


def test_bad_cidr_in_setting_is_reported() -> None:
    with pytest.raises(ValueError, match="CITYOS_NOTIFICATION_DENY"):
        EndpointPolicy(deny="10.0.0.0/99")


def test_address_helpers() -> None:
    assert parse_address("[::ffff:10.0.0.1]") == parse_address("10.0.0.1")
    assert parse_address("example.com") is None
    assert parse_address("deadbeef") is None
    for public in ("8.8.8.8", "2606:4700::1111", "133.242.0.1"):
        assert not is_private_address(parse_address(public))  # type: ignore[arg-type]


async def test_check_resolved_catches_names_resolving_to_denied_addresses() -> None:
    # 'localhost' passes the static check of a policy that only denies 127.0.0.0/8 by network,
    # so only resolving it reveals where it goes (the DNS-rebinding case).
    policy = EndpointPolicy(deny="127.0.0.0/8")
    policy.check("http://localhost:8080/")
    with pytest.raises(BadRequestData, match=re.escape("'localhost' resolves to 127.0.0.1")):
        await policy.check_resolved("http://localhost:8080/")


async def test_check_resolved_accepts_allowed_names_and_literals() -> None:
    policy = EndpointPolicy(allow="localhost,127.0.0.1")
    await policy.check_resolved("http://localhost:8080/")
    assert await policy.resolve("http://127.0.0.1:8080/") == ["127.0.0.1"]


async def test_check_resolved_refuses_statically_refused_uris() -> None:
    with pytest.raises(BadRequestData, match="scheme"):
        await DEFAULT.check_resolved("gopher://example.com/")
