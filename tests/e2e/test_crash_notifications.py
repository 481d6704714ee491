"""Reliability gate: notifications pending at a ``kill -9`` are all delivered after a restart.

The receiver refuses every notification (503) while entities are written, so each acknowledged
write leaves notification work behind (in the outbox, and in the notifier's retry queue).  The
server is then killed with SIGKILL, the receiver starts accepting, and the server restarts on the
same database: every acknowledged write must reach the receiver — on SQLite and on PostgreSQL.
Ten subscriptions watch every write, so each outbox row refers to its fan-out set (a document
written with it) rather than listing them: the restarted server must read the set back.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.receiver import running_receiver
from tests.e2e.server import start_server, stop_server
from tests.e2e.test_notifier_process import file_url, gone

BASE = "/ngsi-ld/v1"
WRITES = 200
SUBSCRIPTIONS = 10          # over events.FANOUT_MIN: rows store a fan-out set
ENV = {"CITYOS_NOTIFICATION_ALLOW": "127.0.0.1", "CITYOS_NOTIFICATION_BACKOFF": "0.1",
       "CITYOS_NOTIFICATION_RETRIES": "1000"}


@pytest.mark.parametrize("notifier", ["inline", "process"])
def test_kill_9_loses_no_pending_notification(database_url: str, tmp_path: Path,
                                              notifier: str) -> None:
    """With ``process`` (ADR 0017) the server dies with its dispatcher process working: the
    dispatcher must go too, and the next server's dispatcher delivers the rows."""
    url = f"sqlite:///{tmp_path / 'crash.db'}" if database_url == "sqlite://" \
        else file_url(database_url, tmp_path)
    env = {**ENV, "CITYOS_NOTIFIER": notifier}
    run = uuid.uuid4().hex[:8]      # the PostgreSQL database is shared across tests
    kind = f"Gauge{run}"
    with running_receiver() as receiver:
        receiver.accepting = False
        process, base = start_server(url, env=env)
        acknowledged: list[str] = []
        try:
            with httpx.Client(base_url=base, timeout=10.0) as client:
                for _ in range(SUBSCRIPTIONS):
                    sub = {"type": "Subscription", "entities": [{"type": kind}],
                           "watchedAttributes": ["level"], "notification": {
                               "format": "keyValues", "endpoint": {"uri": receiver.url}}}
                    assert client.post(f"{BASE}/subscriptions", json=sub).status_code == 201
                for n in range(WRITES):
                    entity = {"id": f"urn:ngsi-ld:{kind}:{n}", "type": kind,
                              "level": {"type": "Property", "value": n}}
                    if client.post(f"{BASE}/entities", json=entity).status_code == 201:
                        acknowledged.append(entity["id"])
            assert receiver.wait_for(lambda r: r.refused > 0), "no notification was attempted"
            helper = httpx.get(f"{base}/health").json()["notifications"].get("dispatcher")
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            if notifier == "process":
                assert helper is not None and helper["running"]
                assert wait_until_gone(helper["pid"]), "the dispatcher outlived its server"
        finally:
            stop_server(process)
        assert len(acknowledged) == WRITES
        assert not receiver.notifications

        receiver.accepting = True
        process, base = start_server(url, env=env)
        try:
            def per_subscription() -> dict[str, set[str]]:
                got: dict[str, set[str]] = {}
                with receiver._lock:
                    for note in receiver.notifications:
                        got.setdefault(note["subscriptionId"], set()).update(
                            e["id"] for e in note.get("data", []))
                return got

            def all_arrived(r: object) -> bool:
                got = per_subscription()
                return len(got) == SUBSCRIPTIONS and all(
                    ids >= set(acknowledged) for ids in got.values())

            receiver.wait_for(all_arrived, timeout=60)
            got = per_subscription()
            assert len(got) == SUBSCRIPTIONS
            for sub_id, ids in got.items():
                missing = [i for i in acknowledged if i not in ids]
                assert not missing, f"{sub_id}: {len(missing)} lost, e.g. {missing[:3]}"
            arrived = {e["id"]: e["level"] for e in receiver.entities()}
            assert all(arrived[i] == int(i.rsplit(":", 1)[1]) for i in acknowledged)
        finally:
            stop_server(process)


def wait_until_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
