"""Building the serving image and pushing it, with docker or podman, as SageMaker can pull it.

SageMaker needs a single-platform image with a Docker v2 schema 2 manifest. Docker's buildx
adds provenance attestations (an OCI index) unless told not to, so docker builds with
``buildx build --provenance=false --output type=docker`` (or the legacy builder when buildx is
missing); podman builds with ``--format docker`` and pushes with ``--format v2s2``.
Registry logins use a throw-away credentials file, never the user's ``~/.docker/config.json``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from deploy import registry
from deploy.errors import DeployError
from deploy.gateway import Gateway
from deploy.registry import Target, is_loopback

Engine = Literal["docker", "podman"]
ENGINES: tuple[Engine, ...] = ("docker", "podman")
PLATFORMS = ("linux/amd64", "linux/arm64")
COMMAND_TIMEOUT = 3600.0


def _docker_is_podman(environ: Mapping[str, str]) -> bool | None:
    """Whether the docker CLI's daemon is podman; None when there is no daemon to ask."""
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{json .Server}}"],
            capture_output=True,
            text=True,
            timeout=20,
            env=dict(environ),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return "podman" in result.stdout.lower()


def detect_engine(
    preferred: str | None = None, *, environ: Mapping[str, str] | None = None
) -> Engine:
    """``--engine``, else ``$RTB_CONTAINER_ENGINE``, else podman if docker is absent or podman."""
    environ = os.environ if environ is None else environ
    choice = preferred or environ.get("RTB_CONTAINER_ENGINE") or None
    if choice is not None:
        if choice not in ENGINES:
            raise DeployError(f"container engine {choice!r} is not one of {', '.join(ENGINES)}")
        if shutil.which(choice) is None:
            raise DeployError(f"container engine {choice} is not installed (not on PATH)")
        return "docker" if choice == "docker" else "podman"
    has_docker = shutil.which("docker") is not None
    has_podman = shutil.which("podman") is not None
    if has_podman and (not has_docker or _docker_is_podman(environ) is not False):
        return "podman"
    if has_docker:
        return "docker"
    raise DeployError(
        "no container engine: install docker or podman (or pass --image of an image already built)"
    )


@dataclass(frozen=True, kw_only=True)
class Pushed:
    reference: str
    digest: str


class Runner:
    """Runs engine commands (or prints them in a dry run); output goes to stderr."""

    def __init__(
        self,
        engine: Engine,
        *,
        dry_run: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.engine = engine
        self.dry_run = dry_run
        self._out = out or sys.stdout
        self._err = err or sys.stderr

    def run(
        self,
        args: Sequence[str],
        *,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        capture: bool = False,
    ) -> str:
        """Run ``engine args``; return its stdout (``capture``) or its relayed output."""
        command = [self.engine, *args]
        if self.dry_run:
            print(f"dry-run: {shlex.join(command)}", file=self._out, flush=True)
            return ""
        print(f"$ {shlex.join(command)}", file=self._err, flush=True)
        environment = {**os.environ, **(env or {})}
        try:
            if capture:
                result = subprocess.run(
                    command, input=stdin, text=True, timeout=COMMAND_TIMEOUT, check=False,
                    env=environment, capture_output=True,
                )  # fmt: skip
                detail = result.stderr
            else:
                result = self._relay(command, stdin=stdin, env=environment)
                detail = result.stdout
            returncode, output = result.returncode, result.stdout
        except subprocess.TimeoutExpired:
            raise DeployError(
                f"{self.engine} {args[0]} took longer than {COMMAND_TIMEOUT:.0f}s"
            ) from None
        except OSError as exc:
            raise DeployError(f"cannot run {self.engine}: {exc}") from None
        if returncode != 0:
            raise DeployError(
                f"`{shlex.join(command)}` failed with status {returncode}: {detail.strip()[-2000:]}"
            )
        return output

    def _relay(
        self, command: list[str], *, stdin: str | None, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        """Copy the command's output, line by line, to our stderr (any stream); keep it too."""
        lines: list[str] = []
        with subprocess.Popen(
            command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(env),
        ) as process:  # fmt: skip
            if stdin is not None and process.stdin is not None:
                process.stdin.write(stdin)
                process.stdin.close()
            assert process.stdout is not None
            expired = threading.Event()

            def expire() -> None:  # a command that hangs without output ends too
                expired.set()
                process.kill()

            watchdog = threading.Timer(COMMAND_TIMEOUT, expire)
            watchdog.start()
            try:
                for line in process.stdout:
                    lines.append(line)
                    self._err.write(line)
                self._err.flush()
                returncode = process.wait()
            finally:
                watchdog.cancel()
            if expired.is_set():
                raise subprocess.TimeoutExpired(command, COMMAND_TIMEOUT)
        return subprocess.CompletedProcess(command, returncode, stdout="".join(lines))

    def has_buildx(self) -> bool:
        if self.engine != "docker":
            return False
        try:
            return (
                subprocess.run(
                    ["docker", "buildx", "version"], capture_output=True, timeout=20, check=False
                ).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            return False


def build(
    runner: Runner,
    *,
    tag: str,
    context: Path,
    dockerfile: Path,
    platform: str = "linux/amd64",
    build_args: Mapping[str, str] | None = None,
) -> str:
    """Build ``tag`` for one platform with a Docker v2 schema 2 manifest; return the tag."""
    if platform not in PLATFORMS:
        raise DeployError(
            f"platform {platform!r} is not one of {', '.join(PLATFORMS)} (arm64 is for Graviton)"
        )
    if not dockerfile.is_file():
        raise DeployError(f"Dockerfile {dockerfile} does not exist")
    arguments = [
        item
        for key, value in sorted((build_args or {}).items())
        for item in ("--build-arg", f"{key}={value}")
    ]
    common = [
        "--platform",
        platform,
        "--tag",
        tag,
        "--file",
        str(dockerfile),
        *arguments,
        str(context),
    ]
    env: dict[str, str] = {}
    if runner.engine == "podman":
        args = ["build", "--format", "docker", *common]
    elif runner.has_buildx():
        args = [
            "buildx",
            "build",
            "--provenance=false",
            "--sbom=false",
            "--output",
            "type=docker",
            *common,
        ]
    else:
        args = ["build", *common]
        env["DOCKER_BUILDKIT"] = "0"  # the legacy builder writes Docker v2 schema 2 only
    runner.run(args, env=env)
    return tag


def publish(runner: Runner, *, source: str, target: Target) -> Pushed:
    """Tag ``source`` as the target, log in (throw-away auth file), push; return the digest."""
    reference = str(target.reference)
    insecure = is_loopback(target.reference.host)
    with tempfile.TemporaryDirectory(prefix="rtb-deploy-auth-") as auth_dir:
        if runner.engine == "podman":
            env = {"REGISTRY_AUTH_FILE": str(Path(auth_dir) / "auth.json")}
            tls = ["--tls-verify=false"] if insecure else []
        else:
            env = {"DOCKER_CONFIG": auth_dir}
            tls = []
        runner.run(["tag", source, reference])
        if target.credentials is not None:
            runner.run(
                [
                    "login",
                    *tls,
                    "--username",
                    target.credentials.username,
                    "--password-stdin",
                    target.reference.host,
                ],
                stdin=target.credentials.password,
                env=env,
                capture=True,
            )
        if runner.engine == "podman":
            digest_file = Path(auth_dir) / "digest"
            runner.run(
                ["push", *tls, "--format", "v2s2", "--digestfile", str(digest_file), reference],
                env=env,
            )
            digest = digest_file.read_text(encoding="utf-8").strip() if digest_file.exists() else ""
        else:
            output = runner.run(["push", reference], env=env)
            digest = next(
                (
                    word
                    for line in output.splitlines()
                    for word in line.split()
                    if word.startswith("sha256:")
                ),
                "",
            )
    if not runner.dry_run and not digest.startswith("sha256:"):
        raise DeployError(f"{runner.engine} push of {reference} reported no digest")
    return Pushed(reference=reference, digest=digest)


def local_digests(runner: Runner, image: str) -> list[str]:
    """The RepoDigests the engine knows for ``image`` (``host/repo@sha256:...``)."""
    output = runner.run(
        ["image", "inspect", "--format", "{{json .RepoDigests}}", image], capture=True
    )
    digests = json.loads(output or "[]")
    return [str(item) for item in digests or []]


@dataclass(frozen=True, kw_only=True)
class Source:
    """The image to push: an existing local image, or one to build from a Dockerfile."""

    image: str | None = None
    context: Path = Path(".")
    dockerfile: Path = Path("Dockerfile")
    platform: str = "linux/amd64"
    build_args: Mapping[str, str] | None = None


def default_build_args(explicit: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """``BASE_IMAGE`` from ``$RTB_BASE_IMAGE`` (a locally built base, as CI makes) unless given."""
    arguments = dict(explicit)
    if "BASE_IMAGE" not in arguments and environ.get("RTB_BASE_IMAGE"):
        arguments["BASE_IMAGE"] = environ["RTB_BASE_IMAGE"]
    return arguments


def prepare(runner: Runner, source: Source, *, tag: str) -> str:
    """The local image reference to push, building it first when no ``--image`` was given."""
    if source.image is not None:
        if not runner.dry_run:
            runner.run(["image", "inspect", "--format", "{{.Id}}", source.image], capture=True)
        return source.image
    return build(
        runner,
        tag=f"rtb-inference:{tag}",
        context=source.context,
        dockerfile=source.dockerfile,
        platform=source.platform,
        build_args=source.build_args,
    )


def push(runner: Runner, gateway: Gateway, *, source: Source, target: Target) -> dict[str, Any]:
    """Build (or take) the image, push it, and check what the registry now serves.

    The manifest the registry serves must be a Docker v2 schema 2 manifest whose sha256 is the
    digest the engine reported, and for ECR, DescribeImages must list that same digest.
    """
    local = prepare(runner, source, tag=target.reference.tag)
    pushed = publish(runner, source=local, target=target)
    if runner.dry_run:
        return {"image_uri": pushed.reference, "dry_run": True}
    manifest = registry.fetch_manifest(target.reference, credentials=target.credentials)
    registry.check_sagemaker_media_type(manifest, target.reference)
    if manifest.digest != pushed.digest:
        raise DeployError(
            f"the registry holds {manifest.digest} for {pushed.reference}, but the push reported "
            f"{pushed.digest}"
        )
    if target.ecr:
        listed = registry.ecr_digest(
            gateway, repository=target.reference.repository, tag=target.reference.tag
        )
        if listed != manifest.digest:
            raise DeployError(
                f"ECR lists {listed} for {pushed.reference}, but the registry served "
                f"{manifest.digest}"
            )
    return {
        "image_uri": pushed.reference,
        "image_uri_by_digest": target.reference.by_digest(manifest.digest),
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "engine": runner.engine,
    }
