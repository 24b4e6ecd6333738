"""`python -m benchmark coldstart`: the image's size, and container start to first 200 on /ping.

    python -m benchmark coldstart                       # build the image, then measure
    python -m benchmark coldstart --image rtb-inference # measure an image already built

Three cases, each started `--repeat` times from `docker run` (container create and start) to the
first 200 on /ping: the default model baked into the image (no volume), a compiled serving
artifact mounted at /opt/ml/model, and the raw SageMaker XGBoost seed model mounted at
/opt/ml/model, which the container imports and compiles at start-up. Targets: 2 s for a compiled
model, 10 s for a raw one. The engine is Docker when a daemon answers (`DOCKER_HOST` or the default
socket), else podman's Docker-compatible socket (`.ci/setup.d/10-containers.sh` starts one).

The engine helpers here (`connect_engine`, `build_image`, `start_container`, `published_port`,
`build_artifact_in_image`) are also what the image tests in `tests/image/` drive the engine with.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.server import REPO_ROOT, ping

DEFAULT_TAG = "rtb-inference:coldstart"
CONTAINER_PORT = "8080/tcp"
# Where a podman API socket is looked for when no Docker daemon answers: this project's CI
# socket, then rootful and rootless podman's standard ones.
PODMAN_SOCKETS = ("/run/rtb-podman/podman.sock", "/run/podman/podman.sock")
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
BUILD_TIMEOUT_S = 1800
TARGETS_S = {"baked": 2.0, "compiled": 2.0, "raw": 10.0}

__all__ = [
    "BuildError",
    "ColdStart",
    "StartTiming",
    "ContainerExitedError",
    "EngineUnavailableError",
    "build_artifact_in_image",
    "build_image",
    "connect_engine",
    "default_seed_model",
    "image_size",
    "main",
    "published_port",
    "start_container",
    "time_cold_start",
    "unpack_model",
    "wait_for_ping",
]


class EngineUnavailableError(RuntimeError):
    """Neither a Docker daemon nor a podman socket answered."""


class BuildError(RuntimeError):
    """The image did not build; the message holds the end of the build log."""


class ContainerExitedError(RuntimeError):
    """The container stopped (or never answered) before /ping said 200; holds its log."""


@dataclass(frozen=True, slots=True)
class StartTiming:
    """One start: seconds from `docker run` until the engine had started the container, and
    until the first 200 on /ping (the cold start)."""

    started_s: float
    ready_s: float


@dataclass(frozen=True, slots=True)
class ColdStart:
    """The starts of one case."""

    case: str
    runs: tuple[StartTiming, ...]

    @property
    def median(self) -> float:
        return statistics.median(run.ready_s for run in self.runs)

    @property
    def worst(self) -> float:
        return max(run.ready_s for run in self.runs)

    @property
    def engine_median(self) -> float:
        return statistics.median(run.started_s for run in self.runs)


def connect_engine(
    *, env: Mapping[str, str] | None = None, podman_sockets: Sequence[str] = PODMAN_SOCKETS
) -> Any:
    """A docker SDK client: Docker if a daemon answers, else a podman API socket.

    Docker is asked first through `DOCKER_HOST` (or its default socket); then `RTB_PODMAN_SOCKET`,
    `podman_sockets` and rootless podman's `$XDG_RUNTIME_DIR/podman/podman.sock`, those that exist.
    Raises EngineUnavailableError, naming every endpoint tried, when nothing answers.
    """
    import docker

    environ = os.environ if env is None else env
    sockets = [environ.get("RTB_PODMAN_SOCKET", ""), *podman_sockets]
    if runtime_dir := environ.get("XDG_RUNTIME_DIR"):
        sockets.append(f"{runtime_dir}/podman/podman.sock")

    def podman_client(path: str) -> Callable[[], Any]:
        return lambda: docker.DockerClient(f"unix://{path}", timeout=120)

    docker_host = environ.get("DOCKER_HOST", DEFAULT_DOCKER_HOST)
    attempts: list[tuple[str, Callable[[], Any]]] = [
        (docker_host, lambda: docker.from_env(environment=dict(environ), timeout=120))
    ]
    attempts += [
        (f"unix://{path}", podman_client(path))
        for path in dict.fromkeys(sockets)
        if path and Path(path).is_socket()
    ]
    failures = []
    for endpoint, connect in attempts:
        if endpoint.startswith("unix://") and not Path(endpoint[len("unix://") :]).is_socket():
            failures.append(f"{endpoint}: no socket there")
            continue
        # docker-py leaves the socket of a refused connection for the garbage collector, which
        # warns (ResourceWarning); a refusal is an expected answer here, not a leak of ours.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            client = None
            try:
                client = connect()
                client.ping()
            except Exception as exc:  # the SDK raises DockerException or requests' errors
                failures.append(f"{endpoint}: {exc}")
                if client is not None:
                    client.close()
                client = None
            gc.collect()
        if client is not None:
            return client
    raise EngineUnavailableError(
        "no container engine answered ("
        + "; ".join(failures)
        + "). Start Docker, or podman's API service: see .ci/setup.d/10-containers.sh"
    )


def build_image(
    client: Any,
    *,
    tag: str,
    context: Path = REPO_ROOT,
    base_image: str | None = None,
    build_args: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> str:
    """Build `context`'s Dockerfile as `tag`; returns the image id. Progress lines go to `log`."""
    args = dict(build_args or {})
    if base_image:
        args["BASE_IMAGE"] = base_image
    tail: list[str] = []
    stream = client.api.build(
        path=str(context),
        tag=tag,
        buildargs=args,
        rm=True,
        forcerm=True,
        decode=True,
        timeout=BUILD_TIMEOUT_S,
    )
    for chunk in stream:
        if "error" in chunk:
            raise BuildError(
                f"building {tag} failed: {chunk['error'].strip()}\n" + "".join(tail[-40:])
            )
        text = chunk.get("stream", "")
        if text:
            tail.append(text)
            del tail[:-200]
            if log is not None:
                log(text.rstrip("\n"))
    image = client.images.get(tag)
    image_id: str = image.id
    return image_id


def image_size(client: Any, image: str) -> int:
    """The image's uncompressed size in bytes, as `docker images` reports it."""
    size: int = client.images.get(image).attrs["Size"]
    return size


def start_container(
    client: Any,
    image: str,
    *,
    command: Sequence[str] | None = ("serve",),
    model_dir: Path | None = None,
    environment: Mapping[str, str] | None = None,
    **options: Any,
) -> Any:
    """`docker run -d -p 127.0.0.1::8080 [-v model_dir:/opt/ml/model:ro] IMAGE serve`.

    The host port is chosen by the engine (read it with `published_port`); `options` pass on to
    the SDK's `containers.run` (user, read_only, tmpfs, ...). The caller removes the container.
    """
    volumes = {}
    if model_dir is not None:
        volumes[str(model_dir)] = {"bind": "/opt/ml/model", "mode": "ro"}
    return client.containers.run(
        image,
        None if command is None else list(command),
        detach=True,
        ports={CONTAINER_PORT: ("127.0.0.1", None)},
        volumes=volumes,
        environment=dict(environment or {}),
        **options,
    )


def published_port(container: Any) -> int:
    """The host port the engine published the container's 8080 on."""
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(CONTAINER_PORT) or []
    if not bindings:
        raise ContainerExitedError(f"container {container.short_id} published no port for 8080")
    return int(bindings[0]["HostPort"])


def wait_for_ping(container: Any, port: int, *, timeout_s: float) -> float:
    """Poll /ping until 200; returns the monotonic time it came. Raises if the container exits."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while time.monotonic() < deadline:
        status = ping(port, timeout=1.0)
        now = time.monotonic()
        if status == 200:
            return now
        polls += 1
        if polls % 20 == 0:  # every ~0.2 s: has it died?
            container.reload()
            if container.status not in {"created", "running"}:
                break
        time.sleep(0.01)
    container.reload()
    log = container.logs().decode(errors="replace")
    raise ContainerExitedError(
        f"container {container.short_id} ({container.status}) gave no 200 on /ping within "
        f"{timeout_s:.0f} s; its log ends:\n{log[-4000:]}"
    )


def time_cold_start(
    client: Any,
    image: str,
    *,
    model_dir: Path | None = None,
    environment: Mapping[str, str] | None = None,
    timeout_s: float = 120.0,
) -> StartTiming:
    """Time one `docker run` to the first 200 on /ping; the container is removed after."""
    started = time.monotonic()
    container = start_container(client, image, model_dir=model_dir, environment=environment)
    running = time.monotonic()
    try:
        ready = wait_for_ping(container, published_port(container), timeout_s=timeout_s)
        return StartTiming(started_s=running - started, ready_s=ready - started)
    finally:
        container.remove(force=True)


def unpack_model(archive: Path, target: Path) -> Path:
    """Unpack a SageMaker `model.tar.gz` as SageMaker does into /opt/ml/model, readable by all."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def build_artifact_in_image(client: Any, image: str, *, source: Path, output_dir: Path) -> Path:
    """Build our serving artifact from a raw model with the image's own toolchain.

    Runs `python -m model build /opt/ml/model --output /out/model.tar.gz` in the image, then
    unpacks the result into `output_dir` (readable by any user, for mounting).
    """
    with tempfile.TemporaryDirectory(prefix="rtb-artifact-") as out:
        Path(out).chmod(0o777)
        container = client.containers.run(
            image,
            ["-m", "model", "build", "/opt/ml/model", "--output", "/out/model.tar.gz"],
            entrypoint=["python"],
            detach=True,
            volumes={
                str(source): {"bind": "/opt/ml/model", "mode": "ro"},
                out: {"bind": "/out", "mode": "rw"},
            },
        )
        try:
            status = container.wait(timeout=600)["StatusCode"]
            if status != 0:
                log = container.logs().decode(errors="replace")
                raise ContainerExitedError(f"model build exited {status}:\n{log[-4000:]}")
        finally:
            container.remove(force=True)
        return unpack_model(Path(out) / "model.tar.gz", output_dir)


def default_seed_model(env: Mapping[str, str] | None = None) -> Path:
    """The reference SageMaker artifact: `RTB_SEED_MODEL`, else the copy in the test data."""
    environ = os.environ if env is None else env
    if override := environ.get("RTB_SEED_MODEL"):
        return Path(override)
    return REPO_ROOT / "tests" / "data" / "seed-model" / "model.tar.gz"


@contextmanager
def _model_dirs(
    client: Any, image: str, seed: Path, cases: Sequence[str]
) -> Iterator[dict[str, Path | None]]:
    """What each case mounts at /opt/ml/model (None: nothing), prepared only when needed."""
    with tempfile.TemporaryDirectory(prefix="rtb-coldstart-") as scratch:
        dirs: dict[str, Path | None] = {"baked": None}
        if "raw" in cases or "compiled" in cases:
            dirs["raw"] = unpack_model(seed, Path(scratch) / "raw")
        if "compiled" in cases:
            print("building a compiled artifact from the seed model ...", file=sys.stderr)
            dirs["compiled"] = build_artifact_in_image(
                client, image, source=Path(scratch) / "raw", output_dir=Path(scratch) / "compiled"
            )
        yield dirs


CASE_TITLES = {
    "baked": "baked default model",
    "compiled": "compiled artifact mounted",
    "raw": "raw SageMaker model mounted",
}


def render(image: str, size: int, results: Sequence[ColdStart], *, workers: str) -> str:
    lines = [
        f"image {image}: {size / 1e6:.1f} MB (target < 350 MB); workers: {workers}",
        "",
        f"{'case':<28} {'runs':>4} {'engine s':>9} {'median s':>9} {'worst s':>8} {'target s':>9}",
    ]
    for result in results:
        lines.append(
            f"{CASE_TITLES[result.case]:<28} {len(result.runs):>4} {result.engine_median:>9.2f} "
            f"{result.median:>9.2f} {result.worst:>8.2f} {TARGETS_S[result.case]:>9.1f}"
        )
    lines += [
        "",
        "engine s: docker run until the container process started; median s / worst s: until",
        "the first 200 on /ping (the cold start).",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark coldstart",
        description="Image size and container start to first 200 on /ping (docker or podman).",
    )
    parser.add_argument("--image", help="measure this image instead of building one")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="tag of the image built (%(default)s)")
    parser.add_argument(
        "--base-image",
        default=os.environ.get("RTB_BASE_IMAGE"),
        help="BASE_IMAGE build argument (default: $RTB_BASE_IMAGE, else the Dockerfile's)",
    )
    parser.add_argument(
        "--seed-model",
        type=Path,
        default=default_seed_model(),
        help="raw SageMaker model.tar.gz (default: $RTB_SEED_MODEL or tests/data/seed-model)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="starts per case (%(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        help="SAGEMAKER_MODEL_SERVER_WORKERS in the container (default: the image's, one per CPU)",
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=list(CASE_TITLES),
        default=list(CASE_TITLES),
        help="which cases to measure (all)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeat < 1 or (args.workers is not None and args.workers < 1):
        print("--repeat and --workers must be at least 1", file=sys.stderr)
        return 2
    if not args.seed_model.is_file() and set(args.cases) & {"compiled", "raw"}:
        print(f"no seed model at {args.seed_model} (set --seed-model)", file=sys.stderr)
        return 2
    environment = {}
    if args.workers is not None:
        environment["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(args.workers)
    try:
        client = connect_engine()
        image = args.image
        if image is None:
            print(f"building {args.tag} ...", file=sys.stderr)
            build_image(client, tag=args.tag, base_image=args.base_image)
            image = args.tag
        size = image_size(client, image)
        with _model_dirs(client, image, args.seed_model, args.cases) as model_dirs:
            results = []
            for case in args.cases:
                runs = []
                for run in range(args.repeat):
                    timing = time_cold_start(
                        client, image, model_dir=model_dirs[case], environment=environment
                    )
                    print(
                        f"{case} run {run + 1}: ready in {timing.ready_s:.2f} s "
                        f"(started in {timing.started_s:.2f} s)",
                        file=sys.stderr,
                    )
                    runs.append(timing)
                results.append(ColdStart(case=case, runs=tuple(runs)))
    except (EngineUnavailableError, BuildError, ContainerExitedError) as exc:
        print(f"coldstart: {exc}", file=sys.stderr)
        return 1
    workers = "one per CPU" if args.workers is None else str(args.workers)
    print(render(image, size, results, workers=workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
