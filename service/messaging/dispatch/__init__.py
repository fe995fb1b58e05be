"""Sending what is due, one job per module: dispatcher (the drain: claiming, queueing, the
senders), load (a claimed batch and its send-time facts), compose (rendering a message), pacing
(each sender's rate limit and the senders' queue), recorder (deciding and writing outcomes),
database (a drain's retried transactions). The send-time rules are in domain/sendtime.py."""

from service.messaging.dispatch.dispatcher import Dispatcher
from service.messaging.dispatch.pacing import SendQueue, SendRateLimiter

__all__ = ["Dispatcher", "SendQueue", "SendRateLimiter"]
