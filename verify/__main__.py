"""``python -m verify``: the command line."""

from verify.cli import entry

entry()
