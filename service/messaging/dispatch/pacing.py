"""Pacing the sends: each sender's rate limit, and the queue that hands the senders a message only
when its sender may start one (urgent first, then each clinic in turn)."""

import asyncio
import math
from collections import OrderedDict, deque

RATE_WINDOW_SECONDS = 1.1  # N sends per 1.1 s: the 0.1 s covers a cold first request's setup
COLD_START_SECONDS = 0.1  # a process's first send to a sender: what its setup may delay it by
# A send the event loop starts at most this late (its timers fire up to a millisecond late) keeps
# the schedule: the next one is not delayed by as much, so the pace stays 1/spacing, and every
# start stays this close to a slot of the schedule (never more than `rate` in any second).
LATE_KEEPS_SCHEDULE_SECONDS = 0.002


class SendRateLimiter:
    """One sender's pace (a number, a Messaging Service, an inbox): sends start evenly spaced,
    RATE_WINDOW_SECONDS / rate apart, so the provider never sees more than `rate` in any second.

    A token bucket (such as aiolimiter) lets a full burst follow a second already at the limit: up to
    twice the rate in one second. Here each send that starts sets the next start time instead,
    10% over 1/rate after it, so that jitter (a process's first request also opens its
    connection and loads Twilio's modules: ~75 ms) cannot squeeze rate + 1 arrivals into one
    second. One limiter serves one worker process, at its share of the service's rate; the
    SendQueue decides which message takes each start."""

    def __init__(self, rate: float):
        self.set_rate(rate)
        self.ready_at = 0.0  # when the next send may start, on the event loop's clock
        self._cold = True

    def set_rate(self, rate: float) -> None:
        per_window = math.floor(rate) if rate >= 1 else rate  # "2.5/s" allows 2 in a second
        self.spacing = RATE_WINDOW_SECONDS / per_window

    def start(self, now: float) -> None:
        """A send starts now (never before ready_at): the next one a spacing after this one's
        slot (ready_at, when now is at most LATE_KEEPS_SCHEDULE_SECONDS past it, else now).
        After the very first, which also loads the client and so may arrive late, the next one
        waits longer."""
        slot = self.ready_at if now - self.ready_at <= LATE_KEEPS_SCHEDULE_SECONDS else now
        self.ready_at = slot + self.spacing
        if self._cold:
            self._cold = False
            self.ready_at += COLD_START_SECONDS


class _Line:
    """What waits for one sender's next start: urgent messages first, then each clinic's in
    turn, each clinic's oldest first."""

    __slots__ = ("limiter", "urgent", "routine")

    def __init__(self, limiter: SendRateLimiter):
        self.limiter = limiter
        self.urgent: deque = deque()
        self.routine: OrderedDict[int, deque] = OrderedDict()  # by clinic, in turn

    def pop(self):
        if self.urgent:
            return self.urgent.popleft()
        clinic, waiting = next(iter(self.routine.items()))
        item = waiting.popleft()
        if waiting:
            self.routine.move_to_end(clinic)
        else:
            del self.routine[clinic]
        return item


class SendQueue:
    """The senders' queue. A sender is handed a message only when that message's sender may
    start a send (its SendRateLimiter), so no sender holds a routine text while it waits for the
    rate: each start goes to an urgent message first, then to each clinic in turn (one clinic's
    wave does not hold another's texts behind it), and different senders take turns. Senders
    waiting for messages are served in the order they came."""

    def __init__(self) -> None:
        self._lines: OrderedDict[SendRateLimiter, _Line] = OrderedDict()
        self._queued = 0
        self._urgent = 0
        self._idle: deque[asyncio.Future] = deque()  # senders waiting
        self._idle_urgent: deque[asyncio.Future] = deque()  # ... for urgent messages only
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._low: tuple[int, asyncio.Future] | None = None  # see routine_below

    def put(self, item, limiter: SendRateLimiter, clinic_id: int, urgent: bool) -> None:
        line = self._lines.get(limiter)
        if line is None:
            line = self._lines[limiter] = _Line(limiter)
        if urgent:
            line.urgent.append(item)
            self._urgent += 1
        elif (waiting := line.routine.get(clinic_id)) is not None:
            waiting.append(item)
        else:
            line.routine[clinic_id] = deque((item,))
        self._queued += 1
        if self._idle or self._idle_urgent:
            self._hand_out()

    def routine_below(self, count: int) -> asyncio.Future:
        """Done once fewer than `count` routine messages wait to be handed out."""
        low = asyncio.get_running_loop().create_future()
        if self._queued - self._urgent < count:
            low.set_result(None)
        else:
            self._low = (count, low)
        return low

    def close(self) -> None:
        """Nothing more is put: take() returns None once everything was handed out."""
        self._closed = True
        self._hand_out()

    async def take(self, urgent_only: bool = False):
        """The next message that may start now, waiting for one; None once closed and empty."""
        idle = self._idle_urgent if urgent_only else self._idle
        loop = asyncio.get_running_loop()
        if not idle:
            item = self._next(loop.time(), urgent_only)
            if item is not None:
                return item
        if self._closed and not (self._urgent if urgent_only else self._queued):
            return None
        waiter = loop.create_future()
        idle.append(waiter)
        self._arm()
        return await waiter

    def _next(self, now: float, urgent_only: bool):
        """Takes the message to start now, or None while no sender with one queued may start."""
        chosen = None
        for line in self._lines.values():
            if line.limiter.ready_at > now:
                continue
            if line.urgent:
                chosen = line
                break
            if chosen is None and line.routine and not urgent_only:
                chosen = line
        if chosen is None:
            return None
        self._urgent -= bool(chosen.urgent)
        self._queued -= 1
        if self._low is not None and self._queued - self._urgent < self._low[0]:
            if not self._low[1].done():
                self._low[1].set_result(None)
            self._low = None
        chosen.limiter.start(now)
        self._lines.move_to_end(chosen.limiter)
        return chosen.pop()

    def _hand_out(self) -> None:
        now = asyncio.get_running_loop().time()
        for idle, urgent_only in ((self._idle_urgent, True), (self._idle, False)):
            while idle and idle[0].done():  # a sender cancelled while waiting
                idle.popleft()
            while idle and (self._urgent if urgent_only else self._queued):
                item = self._next(now, urgent_only)
                if item is None:
                    break
                idle.popleft().set_result(item)
            if self._closed and not (self._urgent if urgent_only else self._queued):
                while idle:
                    waiter = idle.popleft()
                    if not waiter.done():
                        waiter.set_result(None)
        self._arm()

    def _arm(self) -> None:
        """Hands out again when the first sender with a message for a waiting sender may start."""
        starts = [line.limiter.ready_at for line in self._lines.values()
                  if (line.urgent and (self._idle or self._idle_urgent))
                  or (line.routine and self._idle)]
        if not starts:
            return
        at = min(starts)
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._hand_out()
