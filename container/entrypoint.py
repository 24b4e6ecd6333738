"""The `serve` entrypoint: SageMaker runs the image with the single argument `serve`.

    serve                                  # what SageMaker runs (`container.entrypoint:main`)
    python -m container serve [options]
    python -m container --model-dir DIR [--port 8080] [--workers N] [--host 0.0.0.0]

Order of work in the supervisor: settings from the environment and flags, logging, the model
directory (importing a raw SageMaker output once), a full load and verification of the model
(so a bad model exits 1 before any worker starts), then uvicorn with N worker processes, each of
which loads and verifies the model again in its lifespan and serves it single-threaded.
"""

from __future__ import annotations

import os

# One thread per process: scale by worker processes. Set before numpy or any model library loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from fastapi import FastAPI  # noqa: E402

from container.logging_config import configure_logging  # noqa: E402
from container.model_source import ModelSourceError, resolve_model_dir  # noqa: E402
from container.server_config import uvicorn_options  # noqa: E402
from serve.settings import Settings, SettingsError  # noqa: E402

logger = logging.getLogger("container")

WORKER_APP = "container.entrypoint:create_worker_app"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serve",
        description="Serve an RTB XGBoost model on SageMaker's /ping and /invocations. "
        "Environment variables (SAGEMAKER_*, RTB_*) configure the rest; see docs/serve.md.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve"],
        default="serve",
        help="SageMaker passes `serve`; it is also the default",
    )
    parser.add_argument("--model-dir", type=Path, help="artifact or raw SageMaker model directory")
    parser.add_argument("--port", type=int, help="listen port (default 8080)")
    parser.add_argument("--host", help="listen address (default 0.0.0.0)")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            os.environ,
            model_dir=args.model_dir,
            port=args.port,
            host=args.host,
            workers=args.workers,
        )
    except SettingsError as exc:
        configure_logging()
        logger.error("bad configuration: %s", exc)
        return 2
    configure_logging(
        level=settings.log_level, log_format=settings.log_format, access_log=settings.access_log
    )
    if settings.multi_model:
        return serve_multi_model(settings)
    try:
        model_dir = resolve_model_dir(
            settings.model_dir, default_model_dir=settings.default_model_dir
        )
        check_model(model_dir)
    except ModelSourceError as exc:
        logger.error("cannot serve: %s", exc)
        return 1
    except Exception as exc:  # every load or import failure: say what, exit non-zero
        logger.error("cannot serve the model in %s: %s", settings.model_dir, exc)
        return 1
    # Workers are separate processes that rebuild Settings from the environment: hand them the
    # resolved model directory and the command line's choices.
    os.environ["RTB_MODEL_DIR"] = str(model_dir)
    os.environ["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(settings.workers)
    os.environ["SAGEMAKER_BIND_TO_PORT"] = str(settings.port)
    logger.info(
        "serving %s on %s:%d with %d worker(s)",
        model_dir,
        settings.host,
        settings.port,
        settings.workers,
    )
    return run_server(settings)


def run_server(settings: Settings, *, app: str = WORKER_APP) -> int:
    """uvicorn, in this process (one worker) or under its multiprocess supervisor, draining on
    SIGTERM (`container.drain`).

    Returns 0 after a normal shutdown (SIGTERM included) and 3 when a worker failed to start
    (for example its model failed verification): `uvicorn.run` would return 0 from the
    supervisor then.
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from container.drain import DrainingMultiprocess, DrainingServer

    config = uvicorn.Config(app, **uvicorn_options(settings))
    if config.workers == 1:
        server = DrainingServer(config)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    supervisor = DrainingMultiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        logger.error("a worker failed to start; the server stopped (see the worker's log above)")
        return STARTUP_FAILURE
    return 0


def serve_multi_model(settings: Settings) -> int:
    """Multi-model mode (`SAGEMAKER_MULTI_MODEL=true`): no model at start-up; the workers share
    the registry of loaded models in one private directory (`serve.models`)."""
    registry = settings.models_registry_dir
    created = registry is None
    if registry is None:
        registry = Path(tempfile.mkdtemp(prefix="rtb-inference-models-"))  # 0700
    os.environ["RTB_MULTI_MODEL_REGISTRY"] = str(registry)
    os.environ["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(settings.workers)
    os.environ["SAGEMAKER_BIND_TO_PORT"] = str(settings.port)
    logger.info(
        "multi-model mode: serving the models loaded through /models on %s:%d with %d worker(s)",
        settings.host,
        settings.port,
        settings.workers,
    )
    try:
        return run_server(settings)
    finally:
        if created:  # ours alone: a directory given in RTB_MULTI_MODEL_REGISTRY is left as is
            shutil.rmtree(registry, ignore_errors=True)


def check_model(model_dir: Path) -> None:
    """Load and verify the model once in the supervisor; raises on any problem."""
    from serve.predictor import load_model

    load_model(model_dir)


def create_worker_app() -> FastAPI:
    """uvicorn's factory, called in each worker (whose logging uvicorn has configured already
    from the same dict): settings from the environment."""
    from container.http_protocol import GuardedHttpToolsProtocol
    from container.model_source import ImportSettings, build_model_artifact
    from serve.app import create_app

    settings = Settings.from_env()
    GuardedHttpToolsProtocol.head_timeout_s = settings.header_timeout_s
    GuardedHttpToolsProtocol.max_head_bytes = settings.max_header_bytes
    GuardedHttpToolsProtocol.max_concurrency = settings.max_concurrency
    GuardedHttpToolsProtocol.linger_max_bytes = 2 * settings.max_body_bytes
    imports = ImportSettings.from_env(os.environ)  # how multi-model mode builds a raw model

    def build(source: Path) -> Path:
        return build_model_artifact(source, settings=imports)

    return create_app(settings, build=build)


if __name__ == "__main__":
    sys.exit(main())
