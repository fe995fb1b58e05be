"""The contraindication checklist at enrolment. A ticked box never withholds the session's
aftercare (the session has happened; its advice and red-flag guidance matter all the more), but
back walking is not rebooked until a clinician has reviewed it (care/screening.py). Pregnancy is
never approved: direct pressure endangers the fetus."""

from service.domain.i18n import N_

CONTRAINDICATIONS = {
    "osteoporosis": N_("Osteoporosis"),
    "compression_fracture": N_("Compression fractures"),
    "spinal_instability": N_("Spinal instability"),
    "recent_fracture_or_surgery": N_("Recent fracture or surgery"),
    "bleeding": N_("Bleeding disorder or blood thinners"),
    "pregnancy": N_("Pregnancy"),
}
NEVER_APPROVED = frozenset({"pregnancy"})
WAITING = ("open", "override_requested")  # on the dashboard until someone decides


def approvable(ticked: list[str]) -> bool:
    """Whether an owner may let back walking continue despite these boxes."""
    return not NEVER_APPROVED & set(ticked)


def names(ticked: list[str]) -> str:
    return ", ".join(CONTRAINDICATIONS[key] for key in CONTRAINDICATIONS if key in ticked)


def answer(ticked: list[str], none_apply: bool) -> tuple[list[str] | None, str | None]:
    """The checklist as a form gave it: (the answer for Visit.contraindications, an error). No
    answer at all is not "none apply": a skipped checklist must not pass as screened."""
    unknown = sorted(set(ticked) - set(CONTRAINDICATIONS))
    if unknown:
        return None, f"unknown: {', '.join(unknown)}"
    ticked = [key for key in CONTRAINDICATIONS if key in ticked]
    if ticked and none_apply:
        return None, N_("tick the boxes that apply or \"None of these apply\", not both")
    if not ticked and not none_apply:
        return None, N_("tick the boxes that apply, or \"None of these apply\"")
    return ticked, None
