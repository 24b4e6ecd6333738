"""Settings precedence (flags > environment > deploy.toml > defaults) and the local name rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.errors import DeployError
from deploy.settings import Settings, load_settings, require

NO_FLAGS: dict[str, object | None] = {}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_when_nothing_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    resolved = load_settings(flags=NO_FLAGS, environ={})
    assert resolved.settings == Settings()
    assert set(resolved.origins.values()) == {"default"}


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    config = write(
        tmp_path / "deploy.toml",
        'region = "eu-west-1"\nendpoint_name = "from-file"\n'
        'instance_count = 3\nbucket = "file-bucket"\n',
    )
    environ = {
        "AWS_REGION": "eu-central-1",
        "RTB_ENDPOINT_NAME": "from-env",
        "RTB_INSTANCE_COUNT": "2",
    }
    resolved = load_settings(
        flags={"endpoint_name": "from-flag"}, environ=environ, config_file=config
    )
    settings = resolved.settings
    assert (settings.endpoint_name, settings.region, settings.instance_count, settings.bucket) == (
        "from-flag",
        "eu-central-1",
        2,
        "file-bucket",
    )
    assert resolved.origins["endpoint_name"] == "flag"
    assert resolved.origins["region"] == "env AWS_REGION"
    assert resolved.origins["bucket"] == f"file {config}"
    assert resolved.origins["prefix"] == "default"


def test_aws_region_wins_over_aws_default_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    both = load_settings(
        flags=NO_FLAGS, environ={"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    assert both.settings.region == "us-west-2"
    only_default = load_settings(flags=NO_FLAGS, environ={"AWS_DEFAULT_REGION": "us-east-1"})
    assert only_default.settings.region == "us-east-1"


def test_the_config_file_comes_from_rtb_deploy_config_or_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "deploy.toml", 'endpoint_name = "cwd"\n')
    assert load_settings(flags=NO_FLAGS, environ={}).settings.endpoint_name == "cwd"
    other = write(tmp_path / "other.toml", 'endpoint_name = "env-file"\n')
    from_env = load_settings(flags=NO_FLAGS, environ={"RTB_DEPLOY_CONFIG": str(other)})
    assert from_env.settings.endpoint_name == "env-file"
    with pytest.raises(DeployError, match="does not exist"):
        load_settings(flags=NO_FLAGS, environ={"RTB_DEPLOY_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('endpont_name = "typo"\n', "unknown key"),
        ("instance_count = 'two'\n", "instance_count from file .* must be a whole number"),
        ("instance_count = true\n", "must be a whole number"),
        ("poll_interval = -1\n", "must be a non-negative number"),
        ('region = ""\n', "must be a non-empty string"),
        ("region = [\n", "is not valid TOML"),
    ],
)
def test_a_bad_config_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path / "deploy.toml", text)
    with pytest.raises(DeployError, match=message):
        load_settings(flags=NO_FLAGS, environ={}, config_file=config)


def test_bad_environment_values_name_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DeployError, match="instance_count from env RTB_INSTANCE_COUNT"):
        load_settings(flags=NO_FLAGS, environ={"RTB_INSTANCE_COUNT": "many"})


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.region = "us-east-1"  # type: ignore[misc]


def test_require_names_every_missing_setting() -> None:
    with pytest.raises(DeployError) as error:
        require(Settings(), "region", "role_arn")
    assert "region: --region or $AWS_REGION" in str(error.value)
    assert "role_arn: --role-arn or $RTB_ROLE_ARN" in str(error.value)
