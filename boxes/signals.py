"""What boxes tell the apps built on them, without knowing those apps."""

from django.dispatch import Signal

# Sent with box= once a box's container has (re)started and is ready.
box_started = Signal()

# Sent at the end of every reap pass (not a dry run). Receivers may clean up
# what their apps leave in boxes and return lines for the report.
reap_pass = Signal()
