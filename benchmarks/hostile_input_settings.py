"""Settings of ``benchmarks/hostile_input.py``: the demo shop's (its ``LOGGING`` untouched: that is what
the benchmark measures), with ``benchmarks/hostile_input_urls.py`` adding one URL that always fails."""

from shop.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.hostile_input_urls"
