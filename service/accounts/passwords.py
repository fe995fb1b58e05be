"""Staff passwords: the policy for a new one, and hashing with argon2id."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Length is the one rule (NIST SP 800-63B: length over composition rules); the CLI and the
# settings page both ask new_password_problem, so they cannot drift apart.
MIN_LENGTH = 12

_hasher = PasswordHasher()


def new_password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
