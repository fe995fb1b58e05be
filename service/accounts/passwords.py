"""Staff passwords: the policy for a new one, and hashing with argon2id."""

from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.domain.i18n import N_

# NIST SP 800-63B: length, and not one of the passwords guessers try first (no composition
# rules). Every place a password is set asks new_password_problem (the CLI, the settings page,
# a password change, an invitation, a reset), so they cannot drift apart.
MIN_LENGTH = 12
COMMON = Path(__file__).with_name("common-passwords.txt")

_hasher = PasswordHasher()


TOO_SHORT = N_("use at least %(num)s characters")
TOO_COMMON = N_("that is one of the most common passwords; choose another")


def new_password_refusal(password: str) -> tuple[str, dict[str, int]] | None:
    """Why a new password is refused, as a msgid and its values (a page says it in its language),
    or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT, {"num": MIN_LENGTH}
    if password.lower() in _common():
        return TOO_COMMON, {}
    return None


def new_password_problem(password: str) -> str | None:
    """Why a new password is refused, in English (the CLI), or None when it is acceptable."""
    refusal = new_password_refusal(password)
    return refusal and refusal[0] % refusal[1]


@cache
def _common() -> frozenset[str]:
    """The shipped list, lower-cased, read once per process (most of it is shorter than
    MIN_LENGTH, but guessers try it whatever our minimum is)."""
    lines = COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(line.lower() for line in lines if line and not line.startswith("#"))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """None (no account has the email tried) is checked against a hash made here, so that it
    takes as long as a wrong password and the time taken does not tell which emails exist."""
    try:
        return _hasher.verify(password_hash or _no_account(_hasher), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _no_account(hasher: PasswordHasher) -> str:
    """Made with the hasher in use (tests use a cheaper one), once per process."""
    return hasher.hash("no account has this email")
