"""What boxes tell the apps built on them, without knowing those apps."""

from django.dispatch import Signal

# Sent with box= once a box's container has (re)started and is ready.
box_started = Signal()
