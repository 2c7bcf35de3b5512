"""Booking texts (issue 11): appointments, the automatic messages about them, reminders,
confirm by reply and staff alerts. `signals` is how the parts hear of each other."""
