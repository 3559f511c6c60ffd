"""Logging set-up: every line carries the request id; messages never include request bodies or paths (PHI)."""

import logging
import sys

from api.context import request_id_var


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger("calmtrack")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
