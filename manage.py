#!/usr/bin/env python
"""Django's command-line utility for twicesite."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twicesite.settings")
    from django.core.management import execute_from_command_line

    from twicesite.env import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        # Bad configuration is one clear line, not a traceback.
        print(f"twicesite: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
