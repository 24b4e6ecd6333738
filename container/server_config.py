"""Settings -> uvicorn options: one worker process per CPU, uvloop + httptools, bounded load."""

from __future__ import annotations

import math
from typing import Any

from container.http_protocol import IMPORT_PATH as HTTP_PROTOCOL
from container.logging_config import logging_config
from serve.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run(app, **options)`.

    - `limit_concurrency` is off: uvicorn would apply it to /ping too. The same bound
      (`RTB_MAX_CONCURRENCY` connections or unfinished requests per worker) is applied by
      `container.http_protocol` to /invocations only, answered with a JSON 503 at once instead
      of queueing without bound.
    - `timeout_graceful_shutdown`: on SIGTERM, connections get this long to drain (requests
      in flight finish, keep-alive clients are told `Connection: close`; `container.drain`),
      then what is left is cancelled (SageMaker sends SIGKILL 30 s after SIGTERM).
    - `timeout_keep_alive`: above the 60 s idle timeout of the usual front-end proxies.
    - `http`: httptools, with a deadline on each request head (`container.http_protocol`).
    - No access log, Server or Date header by default: nothing per request that nobody reads.
    """
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "loop": "uvloop",
        "http": HTTP_PROTOCOL,
        "lifespan": "on",
        "interface": "asgi3",
        "timeout_keep_alive": math.ceil(settings.keep_alive_s),
        "timeout_graceful_shutdown": math.ceil(settings.graceful_timeout_s),
        "limit_concurrency": None,
        "backlog": settings.backlog,
        "access_log": settings.access_log,
        "server_header": False,
        "date_header": False,
        "proxy_headers": False,
        "log_config": logging_config(
            level=settings.log_level,
            log_format=settings.log_format,
            access_log=settings.access_log,
        ),
    }
