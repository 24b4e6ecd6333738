"""The one logging configuration of the server process and its workers (plain or JSON lines).

Passed to uvicorn as `log_config`, so the supervisor and every worker apply the same dict.
Nothing is logged per successful request unless the access log is switched on.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def logging_config(
    *, level: str = "INFO", log_format: str = "plain", access_log: bool = False
) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: everything to stderr, uvicorn's loggers included;
    uvicorn's access log (one line per request) only when `access_log`."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": PLAIN_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own loggers propagate to the root handler instead of their defaults.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "INFO", "propagate": access_log},
        },
    }


def configure_logging(
    *, level: str = "INFO", log_format: str = "plain", access_log: bool = False
) -> None:
    """Apply `logging_config` to this process."""
    import logging.config

    logging.config.dictConfig(
        logging_config(level=level, log_format=log_format, access_log=access_log)
    )
