"""Simplified Chinese number formats: Django's, except that numbers are grouped by thousands with a comma
(5,951), as in CLDR's ``zh`` locale and Chinese business documents; Django's own zh_Hans leaves them
ungrouped. Everything else comes from ``django.conf.locale.zh_Hans``."""
from django.conf.locale.zh_Hans.formats import *  # noqa: F403

DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
