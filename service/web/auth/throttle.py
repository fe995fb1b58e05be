"""Login throttling that slows a password guesser without locking out the person whose email is
guessed.

Failures are counted per (email, address) pair and per address, in the database so that every
web process sees them. A pair has PAIR_FREE tries, then waits 2, 4, 8... seconds (at most
MAX_DELAY) after its latest failure: a guesser at one address slows only itself, and the real
user at another address logs in at once. An address has a larger budget, whatever the emails:
behind a proxy that is not trusted (TRUSTED_PROXIES) every login shares one address.

Each attempt is reserved (its row committed) BEFORE its password is checked, and counted after:
of concurrent attempts the k-th to commit sees at least k rows, so no more than the budget get
their password checked. A refused attempt drops its row (it checked nothing); a failure keeps it;
a success drops only its own (a guesser at the victim's pair keeps its count).
"""

import math
from datetime import timedelta

from sqlmodel import Session, delete, func, select
from werkzeug.exceptions import TooManyRequests

from service.models import LoginAttempt

PAIR_FREE = 5
PAIR_WINDOW = timedelta(days=1)
MAX_DELAY = timedelta(minutes=15)
ADDRESS_BUDGET = 100
ADDRESS_WINDOW = timedelta(minutes=15)


def reserve(session: Session, email: str, address: str) -> LoginAttempt:
    """Record this attempt as a failure before its password is checked; 429 with Retry-After
    (and no row) when the pair or the address must wait."""
    attempt = LoginAttempt(email=email, remote_addr=address)
    session.add(attempt)
    session.commit()
    wait = max(_pair_wait(session, attempt), _address_wait(session, attempt))
    if wait > 0:
        session.delete(attempt)
        session.commit()
        raise TooManyRequests("Too many failed logins.", retry_after=math.ceil(wait))
    return attempt


def succeeded(session: Session, attempt: LoginAttempt) -> None:
    session.delete(attempt)


def clear(session: Session, email: str) -> int:
    """An owner lets a staff member in at once: forget that email's failures, from everywhere."""
    return session.exec(delete(LoginAttempt).where(LoginAttempt.email == email)).rowcount


def _others(attempt: LoginAttempt, since: timedelta, *where):
    return select(func.count(), func.max(LoginAttempt.at), func.min(LoginAttempt.at)).where(
        LoginAttempt.id != attempt.id, LoginAttempt.at > attempt.at - since, *where)


def _pair_wait(session: Session, attempt: LoginAttempt) -> float:
    failures, latest, _ = session.exec(_others(
        attempt, PAIR_WINDOW, LoginAttempt.email == attempt.email,
        LoginAttempt.remote_addr == attempt.remote_addr)).one()
    if failures < PAIR_FREE:
        return 0
    delay = min(timedelta(seconds=2 ** min(failures - PAIR_FREE + 1, 20)), MAX_DELAY)
    return (latest + delay - attempt.at).total_seconds()


def _address_wait(session: Session, attempt: LoginAttempt) -> float:
    failures, _, oldest = session.exec(_others(
        attempt, ADDRESS_WINDOW, LoginAttempt.remote_addr == attempt.remote_addr)).one()
    if failures < ADDRESS_BUDGET:
        return 0
    return (oldest + ADDRESS_WINDOW - attempt.at).total_seconds()
