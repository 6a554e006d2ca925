"""``python manage.py import_online_retail PATH``: ``import_order_history --format online-retail``.

The demo's name for the import of the UCI Online Retail data set (and Online Retail II): the same
command as :mod:`recommender.management.commands.import_order_history`, reading that format
unless ``--format`` says otherwise.
"""

from recommender.management.commands import import_order_history


class Command(import_order_history.Command):
    help = "Import the UCI Online Retail (or Online Retail II) file PATH (CSV, CSV.gz or parquet) into Oscar."
    default_format = "online-retail"
