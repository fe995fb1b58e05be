"""The database tables (SQLModel). Times are stored as aware UTC; see UTCDateTime.

The `message` table is the outbox and the source of truth for everything the service sends.
"""

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.domain import escalation as escalation_rules
from service.domain.careplan import PlanSettings
from service.domain.messages import MessageKind, MessageStatus
from service.domain.roles import Role, allows


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no zone, so we store naive UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


def _when(nullable: bool = True, index: bool = False, **kw):
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index, **kw)


def _one_of(column: str, values: type[MessageStatus | MessageKind]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=f"ck_message_{column}")


def _json(default_factory=list):
    return Field(default_factory=default_factory, sa_type=sa.JSON, nullable=False)


class Clinic(SQLModel, table=True):
    # Replies are routed by the number (or Messaging Service) that received them: one clinic each.
    __table_args__ = (sa.UniqueConstraint("sms_sender", name="uq_clinic_sms_sender"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    phone: str = Field(max_length=20)
    address: str | None = Field(default=None, max_length=200)
    # The clinic's own sender: a number in E.164 or a Messaging Service SID (MG + 32 hex), of the
    # installation's Twilio account. None: the global TWILIO_FROM_NUMBER or
    # TWILIO_MESSAGING_SERVICE_SID (one clinic only; `doctor` says so).
    sms_sender: str | None = Field(default=None, max_length=34)
    # Routine texts a day (the clinic's day) before the rest wait for the next: None, no cap.
    daily_send_cap: int | None = None
    time_zone: str = Field(default="America/New_York", max_length=64)
    quiet_start: time = Field(default=time(21, 0))
    quiet_end: time = Field(default=time(8, 0))
    on_call_phones: list[str] = _json()
    on_call_emails: list[str] = _json()
    weekly_visits: int = 3
    maintenance_weeks: int = 3
    # Let check-in history set the rebooking nudge's interval (see domain/maintenance.py).
    use_suggested_interval: bool = False
    renotify_minutes: int = 30  # an unacknowledged escalation is re-sent this often ...
    renotify_max: int = 3  # ... this many times, then flagged as unanswered
    # Plan messages go on one channel (the client's preferred one) unless the clinic wants both.
    both_channels: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # A staff session unused this long ends (the clinic's choice; sessions also have a lifetime).
    idle_timeout_minutes: int = Field(default=30, sa_column_kwargs={"server_default": "30"})
    # Every staff member must sign in with a second factor (TOTP) as well as the password.
    require_totp: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # Per-clinic plan changes: {"disabled_kinds": [...], "<kind>_minutes": offset}
    plan_overrides: dict = _json(dict)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def plan_settings(self) -> PlanSettings:
        overrides = self.plan_overrides or {}
        offsets = {
            name: timedelta(minutes=overrides[f"{name}_minutes"])
            for name in ("hydration_after", "heat_after", "checkin_after", "followup_after",
                         "reminder_before")
            if f"{name}_minutes" in overrides
        }
        kinds = PlanSettings().enabled_kinds - set(overrides.get("disabled_kinds", ()))
        return PlanSettings(
            quiet_start=self.quiet_start,
            quiet_end=self.quiet_end,
            weekly_visits=self.weekly_visits,
            maintenance_weeks=self.maintenance_weeks,
            enabled_kinds=frozenset(kinds),
            **offsets,
        )


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=120)
    password_hash: str = Field(max_length=200)
    role: str = Field(default=Role.CLINICIAN, max_length=10)  # a domain.roles.Role
    # Deactivated staff cannot log in and their sessions end (kept, not deleted: the audit trail
    # and acknowledgements name them).
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    # The second factor: the TOTP secret once enrolment is confirmed (None: no second factor), and
    # the last time step accepted, so that one code cannot be used twice.
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_last_step: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    # What Flask-Login asks of a user.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def can(self, permission: str) -> bool:
        """What the role allows, from the one table (domain.roles)."""
        return allows(self.role, permission)

    def get_id(self) -> str:
        return str(self.id)


class StaffSession(SQLModel, table=True):
    """A staff login, server-side: the cookie carries only a random token whose SHA-256 is the id,
    so logout, deactivation or a password change can end it at once."""

    __tablename__ = "staff_session"
    id: str = Field(primary_key=True, max_length=64)
    staff_id: int = Field(foreign_key="staff_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reauth_at: datetime | None = _when()  # the password confirmed again, for sensitive actions
    ended_at: datetime | None = _when()
    remote_addr: str | None = Field(default=None, max_length=64)


class RecoveryCode(SQLModel, table=True):
    """A single-use code that stands in for the second factor; only its SHA-256 is kept."""

    __tablename__ = "recovery_code"
    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff_user.id", index=True)
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = _when()


class StaffToken(SQLModel, table=True):
    """A one-time link sent by email (an invitation, a password reset): the id is the SHA-256 of
    the link's random token; it works once, before it expires."""

    __tablename__ = "staff_token"
    id: str = Field(primary_key=True, max_length=64)
    staff_id: int = Field(foreign_key="staff_user.id", index=True)
    purpose: str = Field(max_length=8)  # invite | reset
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = _when()


class LoginAttempt(SQLModel, table=True):
    """Failed logins, counted per email and per address to slow down password guessing; kept in
    the database so that every web process sees the same count."""

    __tablename__ = "login_attempt"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, index=True)
    remote_addr: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ApiKey(SQLModel, table=True):
    """Only a SHA-256 of the key is kept: keys are long random strings, so a slow hash buys nothing."""

    __tablename__ = "api_key"
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    name: str = Field(max_length=80)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = _when()
    # What it may do (apikeys.SCOPES), space-separated as OAuth writes scopes; keys made before
    # scopes existed hold them all (migration 0012).
    scopes: str = Field(max_length=80)
    expires_at: datetime | None = _when()
    last_used_at: datetime | None = _when()
    # The request rate limit (apikeys.caller): the minute being counted and its requests.
    window_start: datetime | None = _when()
    window_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Client(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("clinic_id", "phone"),
        # An enrolment looks a new client up by email too: without it, a scan of every client.
        sa.Index("ix_client_clinic_email", "clinic_id", "email"),
    )
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    name: str = Field(max_length=120)
    phone: str | None = Field(default=None, max_length=20, index=True)  # E.164
    email: str | None = Field(default=None, max_length=254)
    language: str = Field(default="en", max_length=5)
    time_zone: str = Field(max_length=64)
    sms_consent_at: datetime | None = _when()
    sms_opted_out_at: datetime | None = _when()
    sms_opted_in_at: datetime | None = _when()
    email_opted_out_at: datetime | None = _when()
    baseline_pain: int | None = None
    last_messaged_at: datetime | None = _when()
    # "sms" | "email" | "both" when the client chose on their page; None: the default rule.
    channel_choice: str | None = Field(default=None, max_length=8)
    # Part of the signed page link: raising it revokes every link sent so far (see links.py).
    link_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def can_receive_sms(self) -> bool:
        return bool(self.phone and self.sms_consent_at and not self.sms_opted_out_at)


class Visit(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("clinic_id", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    external_id: str | None = Field(default=None, max_length=100)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    visit_number: int
    pain_before: int | None = None
    pain_after: int | None = None
    channels: list[str] = _json()
    # The contraindication checklist as answered at this visit: [] "none of these apply", the keys
    # ticked (domain/contraindications.py), None not screened (an API enrolment that did not say).
    contraindications: list[str] | None = Field(default=None, sa_type=sa.JSON, nullable=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScreeningReview(SQLModel, table=True):
    """A contraindication ticked at a visit: the session's aftercare still goes, but back-walking
    rebooking waits for a clinician's review (or the owner's approval of an override request)."""

    __tablename__ = "screening_review"
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    visit_id: int | None = Field(default=None, foreign_key="visit.id")
    contraindications: list[str] = _json()
    status: str = Field(default="open", max_length=20)  # open | override_requested | approved | closed
    requested_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    request_reason: str | None = Field(default=None, max_length=500)
    decided_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    decided_at: datetime | None = _when()
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Appointment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    visit_id: int | None = Field(default=None, foreign_key="visit.id")
    starts_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="booked", max_length=24)  # booked|confirmed|reschedule_requested|cancelled
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    """One outgoing SMS or email; its statuses and kinds are in domain/messages.py, and only
    messaging/outbox.py changes its status."""

    __table_args__ = (
        _one_of("status", MessageStatus),
        _one_of("kind", MessageKind),
        # The dispatcher's only query on the hot path reads this partial index.
        sa.Index("ix_message_due", "priority", "next_attempt_at",
                 postgresql_where=sa.text("status = 'pending'"),
                 sqlite_where=sa.text("status = 'pending'")),
        # The claim's fair share per clinic (service/messaging/outbox.py).
        sa.Index("ix_message_due_clinic", "clinic_id", "priority", "next_attempt_at",
                 postgresql_where=sa.text("status = 'pending'"),
                 sqlite_where=sa.text("status = 'pending'")),
        sa.Index("ix_message_claimed", "claimed_at",
                 postgresql_where=sa.text("status = 'claimed'"),
                 sqlite_where=sa.text("status = 'claimed'")),
        sa.Index("ix_message_client_status", "client_id", "status"),
        # A capped clinic's texts today (the daily send cap's count, service/messaging/dispatch/load.py).
        sa.Index("ix_message_clinic_sent", "clinic_id", "sent_at",
                 postgresql_where=sa.text("sent_at IS NOT NULL"),
                 sqlite_where=sa.text("sent_at IS NOT NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    client_id: int | None = Field(default=None, foreign_key="client.id")
    visit_id: int | None = Field(default=None, foreign_key="visit.id", index=True)
    appointment_id: int | None = Field(default=None, foreign_key="appointment.id")
    escalation_id: int | None = Field(default=None, foreign_key="escalation.id")
    kind: str = Field(max_length=32)
    # 0: replies to a client and alerts to staff, which must not queue behind a wave of reminders.
    priority: int = 1
    params: dict = _json(dict)  # render-time values fixed when queued (e.g. the reminder number)
    channel: str = Field(max_length=8)  # sms | email
    recipient: str = Field(max_length=254)
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=MessageStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = _when()
    provider_id: str | None = Field(default=None, max_length=64, index=True)
    error_code: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, max_length=500)
    body: str | None = None  # what was actually sent, rendered at send time
    sent_at: datetime | None = _when()
    delivered_at: datetime | None = _when()
    status_updated_at: datetime | None = _when()
    dedupe_key: str = Field(max_length=120, unique=True)
    # The staff member who wrote it (a STAFF_REPLY from the inbox); None for everything automatic.
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InboundMessage(SQLModel, table=True):
    __tablename__ = "inbound_message"
    __table_args__ = (
        # The clinic's inbox, newest first, and its unread count (on every staff page's nav).
        sa.Index("ix_inbound_message_clinic_received", "clinic_id", "received_at"),
        sa.Index("ix_inbound_message_unread", "clinic_id",
                 postgresql_where=sa.text("read_at IS NULL"), sqlite_where=sa.text("read_at IS NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    provider_sid: str = Field(max_length=64, unique=True)
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id", index=True)
    client_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    from_number: str = Field(max_length=20)
    to_number: str = Field(max_length=20)
    body: str
    intent: str | None = Field(default=None, max_length=32)
    language: str | None = Field(default=None, max_length=5)  # what the client wrote in
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The inbox's unread state, one per clinic: when a staff member first opened it, and who.
    read_at: datetime | None = _when()
    read_by_id: int | None = Field(default=None, foreign_key="staff_user.id")


class CheckIn(SQLModel, table=True):
    __tablename__ = "check_in"
    __table_args__ = (
        # The inbox tells a text's meaning by its check-in (service/care/conversations.py).
        sa.Index("ix_check_in_inbound_message_id", "inbound_message_id"),
        sa.Index("ix_check_in_unread", "client_id",
                 postgresql_where=sa.text("read_at IS NULL"), sqlite_where=sa.text("read_at IS NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    visit_id: int | None = Field(default=None, foreign_key="visit.id")
    answer: str | None = Field(default=None, max_length=8)  # better | same | worse
    pain: int | None = None
    red_flags: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False,
                                 sa_column_kwargs={"server_default": "[]"})
    source: str = Field(max_length=8)  # sms | web
    # The page form's one-time id: a reload or a double tap of the same form records nothing new.
    form_id: str | None = Field(default=None, max_length=64, unique=True)
    inbound_message_id: int | None = Field(default=None, foreign_key="inbound_message.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # As for InboundMessage: a web check-in is in the inbox too.
    read_at: datetime | None = _when()
    read_by_id: int | None = Field(default=None, foreign_key="staff_user.id")


class Escalation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    client_id: int = Field(foreign_key="client.id", index=True)
    severity: str = Field(max_length=8)  # concern | urgent
    status: str = Field(default="open", max_length=16)  # open | acknowledged
    reasons: list[str] = _json()
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_notified_at: datetime | None = _when()
    notify_count: int = 0
    acknowledged_at: datetime | None = _when()
    acknowledged_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    ack_note: str | None = Field(default=None, max_length=500)

    def unanswered(self, renotify_max: int) -> bool:
        """Open with every re-notification sent (the domain's rule): the dashboard and the API
        flag it."""
        return self.status == "open" and escalation_rules.unanswered(
            escalation_rules.OpenEscalation(self.severity, self.opened_at, self.last_notified_at,
                                            self.notify_count), renotify_max)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    # Each clinic's chain read from its end (service/care/audit.py) in one probe.
    __table_args__ = (sa.Index("ix_audit_event_clinic_chain", "clinic_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id", index=True)
    client_id: int | None = Field(default=None, foreign_key="client.id", index=True)
    actor: str = Field(max_length=40)  # system | api | client | staff:<id>
    action: str = Field(max_length=40)
    detail: dict = _json(dict)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    remote_addr: str | None = Field(default=None, max_length=64)  # where the actor was
    hash: str | None = Field(default=None, max_length=64)  # chains the row to the one before it


class WorkerHeartbeat(SQLModel, table=True):
    """One row per worker process, kept fresh by its heartbeat job: /readyz and the metrics read
    it to tell whether anything is sending, whichever hosts the workers run on."""

    __tablename__ = "worker_heartbeat"
    worker_id: str = Field(primary_key=True, max_length=64)  # host:pid
    started_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
