"""The ceiling: Twilio's library alone sending to the fake, no database and no rendering.

The async client (AsyncTwilioHttpClient + messages.create_async) with `in_flight` requests at a
time, as the worker uses it; and, for reference, the sync client in one thread.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from tests.fakes.workers import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, PUBLIC_URL

BODY = ("Bench Back Walking: Hi Client, your 24-hour aftercare window is over; ease back into "
        "activity gently. How does your back feel? Reply 1 better, 2 same, 3 worse, or a pain "
        "score from 0 (none) to 10 (worst).")


async def _async_loop(url: str, count: int, in_flight: int) -> float:
    http = AsyncTwilioHttpClient()
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    client.api.base_url = url
    numbers = itertools.count()

    async def sender():
        for i in iter(lambda: next(numbers), None):
            if i >= count:
                return
            await client.messages.create_async(
                to=f"+1777{i:09d}", from_=FROM_NUMBER, body=BODY,
                status_callback=f"{PUBLIC_URL}/webhooks/twilio/status?m=-{i}")

    try:
        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        return time.perf_counter() - start
    finally:
        await http.close()


def async_rate(url: str, count: int, in_flight: int = 32) -> float:
    asyncio.run(_async_loop(url, min(count, 500), in_flight))  # warm up: connections, imports
    return count / asyncio.run(_async_loop(url, count, in_flight))


def sync_rate(url: str, count: int) -> float:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = url
    start = time.perf_counter()
    for i in range(count):
        client.messages.create(to=f"+1888{i:09d}", from_=FROM_NUMBER, body=BODY,
                               status_callback=f"{PUBLIC_URL}/webhooks/twilio/status?m=-{i}")
    return count / (time.perf_counter() - start)
