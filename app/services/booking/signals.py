"""What happens to an appointment, for whoever must act on it (automatic messages,
reminders, staff alerts), without the appointments service knowing them.

`appointment_changed` is sent by `app.services.booking.appointments` inside the transaction
that changed the appointment, before it commits: receivers add their rows (messages, reminder
rows, alerts) to that same transaction, so the change and everything it causes are stored
together or not at all. Receivers never commit; work for after the commit (queuing a job,
publishing an event) goes through `app.services.after_commit.call_after_commit`.

    appointment_changed.send(appointment, change=..., previous_starts_at=..., user_id=..., now=...)

`change` is one of CHANGES. `previous_starts_at` is the start before a reschedule (else
None); `user_id` who did it (None: the client, by reply, or Twoway itself).
"""

from blinker import Namespace

CHANGES = ("booked", "rescheduled", "cancelled", "confirmed", "completed", "no_show")

_signals = Namespace()
appointment_changed = _signals.signal("appointment-changed")
