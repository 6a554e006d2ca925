"""Tests of whole flows across apps and processes: bad input and API fuzzing through every view,
privacy, Redis outages, real Celery workers (one killed mid-training), and the installable package."""
