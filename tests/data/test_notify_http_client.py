"""The notifier's own HTTP/1.1 client (notify/http.py) against raw sockets and under uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop

from cityos.data.ngsild.notify.errors import DeliveryFailed
from cityos.data.ngsild.notify.http import HttpSender
from cityos.data.ngsild.notify.policy import EndpointPolicy
from tests.data.test_notify_support import make_settings

JSON = {"Content-Type": "application/json"}


def sender() -> HttpSender:
    return HttpSender(EndpointPolicy.from_settings(make_settings()), 1.0)


async def serve(answer: Callable[[int], bytes | None]) -> tuple[asyncio.Server, list[bytes], int]:
    """A raw TCP server: ``answer(n)`` for the n-th request (None: close the connection)."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            requests.append(head + await reader.readexactly(length))
            reply = answer(len(requests))
            if reply is None:
                break
            writer.write(reply)
            await writer.drain()
            if b"Connection: close" in reply:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, requests, server.sockets[0].getsockname()[1]


async def test_request_head_body_and_keep_alive() -> None:
    server, requests, port = await serve(lambda n: b"HTTP/1.1 204 No Content\r\n\r\n")
    http = sender()
    async with server:
        headers = {**JSON, "X-Token": "t1"}
        for _ in range(3):
            await http.send(f"http://127.0.0.1:{port}/notify?n=1", b'{"a":1}', headers, pool="p")
        await http.close()
    assert len(requests) == 3
    first = requests[0].decode()
    assert first.startswith("POST /notify?n=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n" in first and "X-Token: t1\r\n" in first
    assert first.endswith('Content-Length: 7\r\n\r\n{"a":1}')


async def test_answer_without_length_and_non_2xx() -> None:
    replies = {1: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nfine",
               2: b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n"}
    server, requests, port = await serve(lambda n: replies[n])
    http = sender()
    async with server:
        await http.send(f"http://127.0.0.1:{port}/", b"{}", JSON, pool="p")
        with pytest.raises(DeliveryFailed, match="HTTP 302"):
            await http.send(f"http://127.0.0.1:{port}/", b"{}", JSON, pool="p")
        await http.close()
    assert len(requests) == 2


async def test_kept_connection_closed_by_the_receiver_is_replaced() -> None:
    # the receiver drops the connection after the first answer, without saying so
    server, requests, port = await serve(
        lambda n: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" if n != 2 else None)
    http = sender()
    async with server:
        await http.send(f"http://127.0.0.1:{port}/", b"{}", JSON, pool="p")
        await http.send(f"http://127.0.0.1:{port}/", b"{}", JSON, pool="p")
        await http.close()
    assert len(requests) == 3          # the second went again on a fresh connection


async def test_header_injection_is_refused_without_retry() -> None:
    http = sender()
    with pytest.raises(DeliveryFailed) as caught:
        await http.send("http://127.0.0.1:9/", b"{}", {"X-Evil": "a\r\nHost: b"}, pool="p")
    assert caught.value.retry is False


async def test_closed_port_is_a_retryable_failure() -> None:
    with pytest.raises(DeliveryFailed) as caught:
        await sender().send("http://127.0.0.1:9/", b"{}", JSON, pool="p")
    assert caught.value.retry is True


def test_works_under_uvloop() -> None:
    # cityos serve runs on uvloop, whose transports are not asyncio.Transport instances
    async def main() -> None:
        server, requests, port = await serve(lambda n: b"HTTP/1.1 204 No Content\r\n\r\n")
        http = sender()
        async with server:
            await http.send(f"http://127.0.0.1:{port}/x", b"{}", JSON, pool="p")
            await http.send(f"http://127.0.0.1:{port}/x", b"{}", JSON, pool="p")
            await http.close()
        assert len(requests) == 2

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def test_receiver_that_never_answers_times_out_and_loses_its_connection() -> None:
    server, requests, port = await serve(lambda n: b"")     # reads the request, answers nothing
    http = HttpSender(EndpointPolicy.from_settings(make_settings()), 0.3)
    async with server:
        started = asyncio.get_running_loop().time()
        with pytest.raises(DeliveryFailed, match=r"no answer within 0\.3 s"):
            await http.send(f"http://127.0.0.1:{port}/n", b"{}", JSON, pool="p")
        waited = asyncio.get_running_loop().time() - started
        # the sweeper looks every timeout / 10: the failure comes soon after the deadline
        assert 0.3 <= waited < 1.0
        assert len(requests) == 1 and not http._busy and not http._idle.get("p")
        await http.close()


def test_the_timeout_holds_in_a_second_event_loop() -> None:
    """A sender used again under another loop (a restarted app) starts a sweeper there too."""
    http = HttpSender(EndpointPolicy.from_settings(make_settings()), 0.3)

    async def hang_once() -> None:
        server, _, port = await serve(lambda n: b"")
        async with server:
            with pytest.raises(DeliveryFailed, match="no answer"):
                await http.send(f"http://127.0.0.1:{port}/n", b"{}", JSON, pool="p")

    first = asyncio.new_event_loop()          # not closed between uses: its sweeper stays pending
    second = asyncio.new_event_loop()
    try:
        first.run_until_complete(hang_once())
        # the first loop's sweeper never runs here: without one of its own this would hang
        second.run_until_complete(asyncio.wait_for(hang_once(), timeout=5))
    finally:
        for loop in (first, second):
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
