"""The contraindication checklist at enrolment. Any ticked box stops the enrolment unless a
clinician with the right to do so records a reason; pregnancy can never be overridden (direct
pressure endangers the fetus)."""

from collections.abc import Iterable
from dataclasses import dataclass

CONTRAINDICATIONS = {
    "osteoporosis": "Osteoporosis",
    "compression_fracture": "Compression fractures",
    "spinal_instability": "Spinal instability",
    "recent_fracture_or_surgery": "Recent fracture or surgery",
    "bleeding": "Bleeding disorder or blood thinners",
    "pregnancy": "Pregnancy",
}
NEVER_OVERRIDDEN = frozenset({"pregnancy"})


@dataclass(frozen=True)
class Screening:
    allowed: bool
    warning: str | None = None  # what the clinician reads when it is not allowed
    overridden: tuple[str, ...] = ()  # boxes ticked but overridden, for the audit log


def screen(ticked: Iterable[str], override_reason: str | None, may_override: bool) -> Screening:
    ticked = tuple(key for key in CONTRAINDICATIONS if key in set(ticked))
    if not ticked:
        return Screening(allowed=True)
    names = ", ".join(CONTRAINDICATIONS[key] for key in ticked)
    if NEVER_OVERRIDDEN & set(ticked):
        return Screening(False, f"Back walking is not safe with: {names}. Pregnancy cannot be "
                                "overridden: do not enrol this client for back walking.")
    if not may_override:
        return Screening(False, f"Back walking may not be safe with: {names}. Only the clinic "
                                "owner can override this, with a reason.")
    if not (override_reason or "").strip():
        return Screening(False, f"Back walking may not be safe with: {names}. To go ahead, "
                                "record why in the override reason.")
    return Screening(allowed=True, overridden=ticked)
