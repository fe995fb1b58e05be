"""The care logic: enrolment, replies, check-ins, escalations, maintenance and clients' records."""
