"""The .ics file of an appointment (email attachment and the client page's add-to-calendar)."""

from datetime import datetime, timedelta

from icalendar import Calendar, Event


def appointment_ics(appointment_id: int, starts_at: datetime, clinic_name: str,
                    clinic_phone: str, length: timedelta = timedelta(hours=1)) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//Aftercare//appointment//EN")
    cal.add("version", "2.0")
    event = Event()
    event.add("uid", f"appointment-{appointment_id}@aftercare")
    event.add("dtstamp", starts_at)
    event.add("dtstart", starts_at)
    event.add("dtend", starts_at + length)
    event.add("summary", f"Back walking session at {clinic_name}")
    event.add("description", f"To change it, call {clinic_phone}.")
    cal.add_component(event)
    return cal.to_ical()
