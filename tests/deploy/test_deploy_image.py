"""Engine choice and the build and push command lines, with fake engines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from deploy import image
from deploy.errors import DeployError


def test_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DeployError, match="is not one of docker, podman"):
        image.detect_engine("containerd")
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    with pytest.raises(DeployError, match="no container engine"):
        image.detect_engine(environ={})
    with pytest.raises(DeployError, match="podman is not installed"):
        image.detect_engine(environ={"RTB_CONTAINER_ENGINE": "podman"})


def test_build_commands_give_sagemaker_a_docker_v2_single_platform_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    podman = image.Runner("podman", dry_run=True)
    image.build(
        podman, tag="t:1", context=tmp_path, dockerfile=dockerfile, build_args={"BASE_IMAGE": "b"}
    )
    assert capsys.readouterr().out.strip() == (
        "dry-run: podman build --format docker --platform linux/amd64 --tag t:1 "
        f"--file {dockerfile} "
        f"--build-arg BASE_IMAGE=b {tmp_path}"
    )
    docker = image.Runner("docker", dry_run=True)
    docker.has_buildx = lambda: True  # type: ignore[method-assign]
    image.build(docker, tag="t:1", context=tmp_path, dockerfile=dockerfile, platform="linux/arm64")
    line = capsys.readouterr().out
    assert (
        "docker buildx build --provenance=false --sbom=false --output type=docker "
        "--platform linux/arm64" in line
    )
    with pytest.raises(DeployError, match="is not one of linux/amd64, linux/arm64"):
        image.build(
            docker, tag="t:1", context=tmp_path, dockerfile=dockerfile, platform="linux/s390x"
        )


def test_base_image_build_arg_comes_from_the_environment_unless_given() -> None:
    assert image.default_build_args({}, {"RTB_BASE_IMAGE": "localhost/base"}) == {
        "BASE_IMAGE": "localhost/base"
    }
    assert image.default_build_args({"BASE_IMAGE": "x"}, {"RTB_BASE_IMAGE": "y"}) == {
        "BASE_IMAGE": "x"
    }
    assert image.default_build_args({}, {}) == {}


def test_engine_commands_that_hang_are_ended(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "podman"
    fake.write_text("#!/bin/sh\necho started\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(image, "COMMAND_TIMEOUT", 0.5)
    err = io.StringIO()
    with pytest.raises(DeployError, match="took longer than"):
        image.Runner("podman", err=err).run(["push", "x"])
    assert "started" in err.getvalue()


def test_engine_failures_carry_the_end_of_the_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "podman"
    fake.write_text(
        "#!/bin/sh\necho 'Error: unauthorized: authentication required' >&2\nexit 125\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(DeployError, match="failed with status 125: Error: unauthorized"):
        image.Runner("podman", err=io.StringIO()).run(["push", "x"])
