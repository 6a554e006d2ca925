"""Signals the recommender app sends; serving (:mod:`recommender.serving.generations`) and
measurement (:mod:`recommender.measurement.capture`) listen to them.

* ``events_recorded(rows)``: events were stored; ``rows`` maps each person (``u<user id>`` /
  ``v<visitor id>``) to the ``(product, unix time, event type)`` history rows the events add, or
  ``None`` when their history must be read again.
* ``visitor_merged(visitor_id, user, since)``: at login, what the visitor recorded since ``since``
  became the account's.
"""

from django.dispatch import Signal

events_recorded = Signal()
visitor_merged = Signal()
