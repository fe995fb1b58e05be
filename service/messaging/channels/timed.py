"""A channel whose every send is timed into the worker's send-duration histogram."""

import time

from service.messaging.channels import Channel, Outgoing
from service.ops.metrics import SEND_DURATION


class TimedChannel:
    """A channel whose every send is measured."""

    def __init__(self, name: str, channel: Channel):
        self.name = name
        self.channel = channel
        self.sender = channel.sender
        self._duration = SEND_DURATION.labels(name)

    async def send(self, message: Outgoing) -> str:
        started = time.perf_counter()
        try:
            return await self.channel.send(message)
        finally:
            self._duration.observe(time.perf_counter() - started)

    async def close(self) -> None:
        await self.channel.close()


def timed(channels: dict[str, Channel]) -> dict[str, Channel]:
    return {name: TimedChannel(name, channel) for name, channel in channels.items()}
