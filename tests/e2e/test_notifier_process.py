"""The notifier in a dispatcher process of its own (CITYOS_NOTIFIER=process, ADR 0017).

Each test runs a real ``cityos serve``, whose dispatcher is a real second process, and a real
HTTP receiver, on SQLite (a file: two processes open it) and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from cityos.auth.directory import opened_directory
from tests.conftest import _empty_postgres
from tests.e2e.receiver import Receiver, running_receiver
from tests.e2e.server import start_server, stop_server

LD = "/ngsi-ld/v1"
ENV = {"CITYOS_NOTIFIER": "process", "CITYOS_NOTIFICATION_ALLOW": "127.0.0.1",
       "CITYOS_NOTIFICATION_BACKOFF": "0.1", "CITYOS_NOTIFICATION_RETRIES": "1000"}


def file_url(database_url: str, tmp_path: Path) -> str:
    """The engine's URL, with SQLite in a file (an in-memory database is one process's own).

    PostgreSQL's test database is shared by the whole session and emptied first: a server in
    process mode refuses to start over NGSI v2 subscriptions an earlier test left there."""
    if database_url == "sqlite://":
        return f"sqlite:///{tmp_path / 'city.db'}"
    asyncio.run(_empty_postgres(database_url))
    return database_url


def dispatcher(base: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{base}/health").json()["notifications"]["dispatcher"]
    return found


def wait_until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s: {check}")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (its parent, the killed server, was not our child either) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def ids_of(receiver: Receiver, sub_id: str) -> list[str]:
    with receiver._lock:
        return [e["id"] for n in receiver.notifications if n["subscriptionId"] == sub_id
                for e in n.get("data", [])]


def subscribe(client: httpx.Client, body: dict[str, Any]) -> str:
    r = client.post(f"{LD}/subscriptions", json={"type": "Subscription", **body})
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def test_the_dispatcher_delivers_counts_and_follows_subscription_changes(
        database_url: str, tmp_path: Path) -> None:
    kind = f"Gauge{uuid.uuid4().hex[:8]}"       # PostgreSQL's database is shared by tests
    with running_receiver() as receiver:
        process, base = start_server(file_url(database_url, tmp_path), env=ENV)
        try:
            state = dispatcher(base)
            assert state["running"] and state["pid"] not in (None, process.pid)
            with httpx.Client(base_url=base, timeout=10) as client:
                sub_id = subscribe(client, {
                    "entities": [{"type": kind}], "watchedAttributes": ["level"],
                    "notification": {"format": "keyValues",
                                     "endpoint": {"uri": receiver.url}}})
                for n in range(5):
                    r = client.post(f"{LD}/entities", json={
                        "id": f"urn:ngsi-ld:{kind}:{n}", "type": kind,
                        "level": {"type": "Property", "value": n}})
                    assert r.status_code == 201, r.text
                receiver.wait_for(lambda r: len(ids_of(r, sub_id)) == 5)
                levels = {e["id"]: e["level"] for e in receiver.entities()}
                assert levels == {f"urn:ngsi-ld:{kind}:{n}": n for n in range(5)}   # keyValues

                # the dispatcher's counters reach the server's GET (sent every 0.5 s)
                def counted() -> dict[str, Any] | None:
                    found: dict[str, Any] = client.get(
                        f"{LD}/subscriptions/{sub_id}").json()["notification"]
                    return found if found.get("timesSent", 0) >= 1 else None

                shown = wait_until(counted)
                assert shown["status"] == "ok" and shown["lastSuccess"]

                # changed in the server: the dispatcher renders the next change with the new
                # form (the change reaches it before the write that follows)
                patch = client.patch(f"{LD}/subscriptions/{sub_id}", json={"notification": {
                    "format": "normalized", "endpoint": {"uri": receiver.url}}})
                assert patch.status_code == 204, patch.text
                client.patch(f"{LD}/entities/urn:ngsi-ld:{kind}:1/attrs",
                             json={"level": {"type": "Property", "value": 101}})
                receiver.wait_for(lambda r: len(ids_of(r, sub_id)) == 6)
                assert receiver.entities()[5]["level"] == {"type": "Property", "value": 101}

                # a periodic subscription runs in the dispatcher too
                periodic = subscribe(client, {
                    "entities": [{"type": kind}], "timeInterval": 1,
                    "notification": {"endpoint": {"uri": receiver.url}}})
                receiver.wait_for(lambda r: len(ids_of(r, periodic)) >= 10)   # 2 rounds of 5

                # deleted: nothing more, and the dispatcher has no work left over
                assert client.delete(f"{LD}/subscriptions/{sub_id}").status_code == 204
                assert client.delete(f"{LD}/subscriptions/{periodic}").status_code == 204
                client.patch(f"{LD}/entities/urn:ngsi-ld:{kind}:2/attrs",
                             json={"level": {"type": "Property", "value": 102}})
                time.sleep(1.0)
                assert 102 not in [e.get("level") for e in receiver.entities()]
                notes = httpx.get(f"{base}/health").json()["notifications"]
                assert notes["pendingRows"] == 0 and notes["dispatcher"]["rowsLeftToPoller"] == 0
        finally:
            stop_server(process)
        # a clean stop: the dispatcher finished on request, nothing was killed or crashed
        assert wait_until(lambda: gone(state["pid"]), timeout=10)
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
        assert "did not stop" not in output and "Traceback" not in output, output


def test_a_killed_dispatcher_is_restarted_and_delivers_every_pending_notification(
        database_url: str, tmp_path: Path) -> None:
    kind = f"Gauge{uuid.uuid4().hex[:8]}"
    writes, subscriptions = 100, 10             # 10: rows refer to a fan-out set
    with running_receiver() as receiver:
        receiver.accepting = False
        process, base = start_server(file_url(database_url, tmp_path), env=ENV)
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                subs = [subscribe(client, {
                    "entities": [{"type": kind}],
                    "notification": {"format": "keyValues", "endpoint": {"uri": receiver.url}}})
                    for _ in range(subscriptions)]
                for n in range(writes):
                    r = client.post(f"{LD}/entities", json={
                        "id": f"urn:ngsi-ld:{kind}:{n}", "type": kind,
                        "level": {"type": "Property", "value": n}})
                    assert r.status_code == 201
            assert receiver.wait_for(lambda r: r.refused > 0)
            first = dispatcher(base)
            assert httpx.get(f"{base}/health").json()["status"] == "ok"
            os.kill(first["pid"], signal.SIGKILL)
            # until the next one runs, /health says so (the pause before a restart is 0.5 s)
            assert wait_until(lambda: httpx.get(f"{base}/health").json()["status"] == "degraded",
                              timeout=5)
            restarted = wait_until(lambda: (d := dispatcher(base))["running"]
                                   and d["pid"] != first["pid"] and d)
            assert restarted["restarts"] == 1
            receiver.accepting = True
            expected = {f"urn:ngsi-ld:{kind}:{n}" for n in range(writes)}
            receiver.wait_for(lambda r: all(set(ids_of(r, s)) >= expected for s in subs),
                              timeout=60)
            for sub_id in subs:
                missing = expected - set(ids_of(receiver, sub_id))
                assert not missing, f"{sub_id}: {len(missing)} lost"
        finally:
            stop_server(process)


def test_counters_counted_just_before_a_stop_survive_the_restart(
        database_url: str, tmp_path: Path) -> None:
    kind = f"Gauge{uuid.uuid4().hex[:8]}"
    url = file_url(database_url, tmp_path)
    with running_receiver() as receiver:
        process, base = start_server(url, env=ENV)
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                sub_id = subscribe(client, {
                    "entities": [{"type": kind}],
                    "notification": {"endpoint": {"uri": receiver.url}}})
                client.post(f"{LD}/entities", json={"id": f"urn:ngsi-ld:{kind}:1", "type": kind,
                                                  "level": {"type": "Property", "value": 1}})
                assert receiver.wait_for(lambda r: len(ids_of(r, sub_id)) == 1)
        finally:
            # at once: the dispatcher reports every 0.5 s and the server saves every 2 s, so
            # only the hand-over at the stop can have carried this count
            stop_server(process)
        sent = len([n for n in receiver.notifications if n["subscriptionId"] == sub_id])
        process, base = start_server(url, env=ENV)
        try:
            shown = httpx.get(f"{base}{LD}/subscriptions/{sub_id}").json()["notification"]
            assert shown["timesSent"] == sent == 1
        finally:
            stop_server(process)


async def _clients(url: str, run: str) -> dict[str, str]:
    """Two operator clients: one owns the subscription, the other writes the entities."""
    secrets: dict[str, str] = {}
    async with opened_directory(url) as directory:
        for name in ("owner", "writer"):
            _, secret = await directory.create_client(
                name, client_id=f"{name}-{run}", grant_types=("client_credentials",),
                roles=("operator",), scopes=("subscriptions", "entities:read", "entities:write"))
            assert secret is not None
            secrets[name] = secret
    return secrets


async def _delete_client(url: str, client_id: str) -> None:
    async with opened_directory(url) as directory:
        assert await directory.delete_client(client_id)


def test_the_dispatcher_checks_what_the_owner_may_see_now(database_url: str,
                                                          tmp_path: Path) -> None:
    """With access control on, the dispatcher re-resolves a subscription's owner in the identity
    tables it opened itself: a client removed while the server runs gets nothing more."""
    run = uuid.uuid4().hex[:8]
    kind = f"Gauge{run}"
    url = file_url(database_url, tmp_path)
    secrets = asyncio.run(_clients(url, run))
    with running_receiver() as receiver:
        process, base = start_server(url, env={**ENV, "CITYOS_INSECURE_NO_AUTH": "0"})
        try:
            def client_of(name: str) -> httpx.Client:
                token = httpx.post(f"{base}/auth/token", auth=(f"{name}-{run}", secrets[name]),
                                   data={"grant_type": "client_credentials",
                                         "scope": "subscriptions entities:read entities:write"})
                assert token.status_code == 200, token.text
                return httpx.Client(base_url=base, timeout=10, headers={
                    "Authorization": f"Bearer {token.json()['access_token']}"})

            with client_of("owner") as owner, client_of("writer") as writer:
                sub_id = subscribe(owner, {"entities": [{"type": kind}], "notification": {
                    "format": "keyValues", "endpoint": {"uri": receiver.url}}})
                r = writer.post(f"{LD}/entities", json={
                    "id": f"urn:ngsi-ld:{kind}:1", "type": kind,
                    "level": {"type": "Property", "value": 1}})
                assert r.status_code == 201, r.text
                assert receiver.wait_for(lambda r: len(ids_of(r, sub_id)) == 1)

                asyncio.run(_delete_client(url, f"owner-{run}"))
                time.sleep(1.5)                     # owners are looked up again after 1 s
                r = writer.patch(f"{LD}/entities/urn:ngsi-ld:{kind}:1/attrs",
                                 json={"level": {"type": "Property", "value": 2}})
                assert r.status_code == 204, r.text
                time.sleep(1.5)
                assert [e["level"] for e in receiver.entities()] == [1]
            assert dispatcher(base)["restarts"] == 0
        finally:
            stop_server(process)


def v2_sub(url: str, **extra: Any) -> dict[str, Any]:
    # typePattern: a parsed v2 subscription holds a Python test for it, which does not pickle
    return {"subject": {"entities": [{"idPattern": ".*", "typePattern": "Room.*"}]},
            "notification": {"http": {"url": url}, "attrsFormat": "keyValues"}, **extra}


def test_ngsi_v2_subscriptions_are_delivered_by_the_dispatcher(database_url: str,
                                                                tmp_path: Path) -> None:
    """v2 subscriptions cross as their stored documents; a oneshot one fires once and is
    stored inactive by the server; a restarted dispatcher rebuilds them from its start frame."""
    with running_receiver() as receiver:
        process, base = start_server(file_url(database_url, tmp_path), env=ENV)
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                r = client.post("/v2/subscriptions", json=v2_sub(receiver.url))
                assert r.status_code == 201, r.text
                every = r.headers["location"].rsplit("/", 1)[1]
                r = client.post("/v2/subscriptions", json=v2_sub(receiver.url, status="oneshot"))
                assert r.status_code == 201, r.text
                once = r.headers["location"].rsplit("/", 1)[1]
                for n in (1, 2):
                    r = client.post("/v2/entities?options=keyValues",
                                    json={"id": f"R{n}", "type": "Room", "temperature": 20 + n})
                    assert r.status_code == 201, r.text
                    assert receiver.wait_for(lambda r, n=n: len(ids_of(r, every)) == n)
                assert receiver.entities()[0] == {"id": "R1", "type": "Room", "temperature": 21}
                assert wait_until(lambda: client.get(f"/v2/subscriptions/{once}").json()
                                  ["status"] == "inactive")
                assert ids_of(receiver, once) == ["R1"]

                os.kill(dispatcher(base)["pid"], signal.SIGKILL)
                wait_until(lambda: dispatcher(base)["restarts"] == 1
                           and dispatcher(base)["running"])
                r = client.post("/v2/entities?options=keyValues",
                                json={"id": "R3", "type": "Room", "temperature": 23})
                assert r.status_code == 201, r.text
                assert receiver.wait_for(lambda r: ids_of(r, every)[-1:] == ["R3"])
                assert ids_of(receiver, once) == ["R1"]
                for sub_id in (every, once):          # PostgreSQL's database is shared
                    assert client.delete(f"/v2/subscriptions/{sub_id}").status_code == 204
        finally:
            stop_server(process)
