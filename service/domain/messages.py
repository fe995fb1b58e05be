"""What an outbox message can be: its kinds, its statuses and why one was cancelled.

One spelling for each: the database checks status and kind against these (migration 0007), and
service/messaging/outbox.py is the only writer of a status. StrEnums, so a value read back from
the database (a plain str) compares equal to its member.
"""

from enum import StrEnum

from service.domain import careplan


class MessageStatus(StrEnum):
    """pending -> claimed -> sent -> delivered | undelivered; or failed, cancelled (superseded,
    opted out, ...) and skipped (a send-time condition said no)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


# The provider's last word: nothing steps a message back from these.
FINAL = (MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED)
# Nothing more will happen to it by our hand (the retention purge may delete it).
FINISHED = (MessageStatus.SENT, *FINAL, MessageStatus.CANCELLED, MessageStatus.SKIPPED)


class MessageKind(StrEnum):
    """Each kind is a template (templates/messages/<language>/<channel>/<kind>)."""

    # The aftercare plan (domain/careplan.py)
    WINDOW_START = careplan.WINDOW_START
    HYDRATION = careplan.HYDRATION
    HEAT = careplan.HEAT
    CHECKIN = careplan.CHECKIN
    FOLLOWUP = careplan.FOLLOWUP
    APPOINTMENT_REMINDER = careplan.APPOINTMENT_REMINDER
    REBOOK_NUDGE = careplan.REBOOK_NUDGE
    # Answers to a client's text (care/inbound.py)
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    OPT_IN_CONFIRMATION = "opt_in_confirmation"
    HELP = "help"
    CHECKIN_THANKS = "checkin_thanks"
    CONCERN_ADVICE = "concern_advice"
    URGENT_ADVICE = "urgent_advice"
    APPOINTMENT_CONFIRMED = "appointment_confirmed"
    APPOINTMENT_RESCHEDULE = "appointment_reschedule"
    CLARIFY = "clarify"
    # A client's new page link (messaging/links.py)
    PAGE_LINK = "page_link"
    # An escalation's alert to the on-call staff (care/escalations.py)
    STAFF_ALERT = "staff_alert"
    # A staff member's own text to a client, from the inbox
    STAFF_REPLY = "staff_reply"
    # Emails to staff about their account: an invitation, a password reset link
    STAFF_INVITE = "staff_invite"
    PASSWORD_RESET = "password_reset"


class CancelReason(StrEnum):
    """Why a pending message was cancelled (kept in its error_code)."""

    SUPERSEDED = "superseded"  # a new visit's plan replaces it
    CHANNEL_CHANGED = "channel_changed"  # its channel is no longer the client's
    OPTED_OUT = "opted_out"  # the client stopped this channel
    NO_CONSENT = "no_consent"  # a plan text to a client who never agreed to texts
    ACKNOWLEDGED = "acknowledged"  # staff acknowledged the escalation it alerts to
    ERASED = "erased"  # the client's data was erased


# Cancelled only because its channel was not in use: it may go again once that channel is.
REOPENABLE = (CancelReason.OPTED_OUT, CancelReason.CHANNEL_CHANGED)
