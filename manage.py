#!/usr/bin/env python
from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    if sys.argv[1:2] == ["serve"]:
        # daphne makes its loop when Django loads the daphne app: choose it first
        from dashboard.server import use_uvloop

        use_uvloop()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
