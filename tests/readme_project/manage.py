#!/usr/bin/env python
"""``manage.py`` of the README's shop: a plain django-oscar 4.2 project with the apps installed as README.md says."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yourshop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
