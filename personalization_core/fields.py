"""Query-parameter fields shared by both apps' APIs and the segmentation dashboard."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

#: the largest value of a PostgreSQL ``integer`` column (ids, clusters, counts)
MAX_INT = 2**31 - 1

_INTEGER = re.compile(r"-?[0-9]{1,12}", re.ASCII)


class StrictIntegerField(serializers.IntegerField):
    """An integer written with ASCII digits (an optional ``-``), by default 1 to ``MAX_INT``.

    DRF's own field accepts anything ``int()`` does: unicode digits (``٣`` is 3), ``"1.0"``
    and surrounding spaces. A query parameter is text typed or pasted by a person: only plain
    digits are a number.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_INT)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or (isinstance(data, str) and not _INTEGER.fullmatch(data)):
            self.fail("invalid")
        return super().to_internal_value(data)
