from __future__ import annotations

from pathlib import Path

import pytest

from serve.settings import MIB, Settings, SettingsError


def test_defaults_follow_sagemaker() -> None:
    settings = Settings.from_env({})
    assert settings.model_dir == Path("/opt/ml/model")
    assert settings.port == 8080
    assert settings.default_accept == "text/csv"
    assert settings.max_body_bytes == 6 * MIB
    assert settings.inference_output == ()
    assert settings.batch is False
    assert settings.workers >= 1
    assert settings.access_log is False


def test_environment_is_read() -> None:
    settings = Settings.from_env(
        {
            "RTB_MODEL_DIR": "/models/a",
            "RTB_DEFAULT_MODEL_DIR": "/baked",
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "Application/JSON; charset=utf-8",
            "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label, Probability",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1.5",
            "RTB_MAX_ROWS": "50",
            "RTB_LOG_LEVEL": "debug",
            "RTB_LOG_FORMAT": "JSON",
            "RTB_ACCESS_LOG": "true",
            "RTB_KEEP_ALIVE_TIMEOUT": "90",
            "RTB_MAX_CONCURRENCY": "64",
            "RTB_BACKLOG": "128",
            "RTB_GRACEFUL_TIMEOUT": "10",
            "RTB_MAX_HEADER_BYTES": "8192",
            "SAGEMAKER_BATCH": "true",
        }
    )
    assert settings.batch is True
    assert settings.model_dir == Path("/models/a")
    assert settings.default_model_dir == Path("/baked")
    assert (settings.port, settings.workers, settings.request_timeout_s) == (9000, 3, 30.0)
    assert settings.default_accept == "application/json"
    assert settings.inference_output == ("predicted_label", "probability")
    assert settings.max_body_bytes == int(1.5 * MIB)
    assert (settings.max_rows, settings.log_level, settings.log_format) == (50, "DEBUG", "json")
    assert settings.access_log is True
    assert (settings.keep_alive_s, settings.max_concurrency, settings.backlog) == (90.0, 64, 128)
    assert settings.graceful_timeout_s == 10.0
    assert settings.max_header_bytes == 8192


def test_empty_values_count_as_unset_and_overrides_win() -> None:
    settings = Settings.from_env({"SAGEMAKER_BIND_TO_PORT": " ", "RTB_MAX_ROWS": "5"}, max_rows=7)
    assert settings.port == 8080
    assert settings.max_rows == 7


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("SAGEMAKER_BIND_TO_PORT", "http", "SAGEMAKER_BIND_TO_PORT='http'"),
        ("SAGEMAKER_BIND_TO_PORT", "70000", "between 1 and 65535"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "0", "workers must be at least 1"),
        ("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/xml", "default accept"),
        ("SAGEMAKER_INFERENCE_OUTPUT", "probability,colour", "inference output"),
        ("SAGEMAKER_INFERENCE_OUTPUT", "probability,probability", "distinct"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "0", "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
        ("RTB_MAX_ROWS", "-1", "max_rows"),
        ("SAGEMAKER_BATCH", "maybe", "SAGEMAKER_BATCH"),
        ("RTB_LOG_LEVEL", "loud", "log level"),
        ("RTB_LOG_FORMAT", "xml", "log format"),
        ("RTB_ACCESS_LOG", "maybe", "RTB_ACCESS_LOG"),
        ("RTB_GRACEFUL_TIMEOUT", "0", "graceful_timeout_s"),
    ],
)
def test_bad_values_fail_clearly(name: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_the_row_limit_follows_the_byte_limit_unless_set() -> None:
    """No row takes less than a byte: by default no body within the byte limit is refused for
    its row count (a 6 MiB Batch Transform mini-batch of short rows holds ~450,000 of them)."""
    assert Settings.from_env({}).max_rows == 6 * MIB
    assert Settings.from_env({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "20"}).max_rows == 20 * MIB
    assert Settings.from_env({"RTB_MAX_ROWS": "1000"}).max_rows == 1000
    row = b"0,0,0,0,0,0,0\n"
    assert (6 * MIB) // len(row) > 100_000  # the former default refused such a mini-batch


def test_multi_model_settings_are_read_and_checked() -> None:
    off = Settings.from_env({})
    assert off.multi_model is False and off.models_registry_dir is None
    assert off.models_memory_bytes > 0  # half the machine's memory
    settings = Settings.from_env(
        {
            "SAGEMAKER_MULTI_MODEL": "true",
            "RTB_MULTI_MODEL_MEMORY_MB": "512",
            "RTB_MULTI_MODEL_REGISTRY": "/tmp/registry",
            "RTB_MULTI_MODEL_PAGE_SIZE": "7",
        }
    )
    assert settings.multi_model is True
    assert settings.models_memory_bytes == 512 * MIB
    assert settings.models_registry_dir == Path("/tmp/registry")
    assert settings.models_page_size == 7
    for name, value, fragment in (
        ("SAGEMAKER_MULTI_MODEL", "maybe", "SAGEMAKER_MULTI_MODEL"),
        ("RTB_MULTI_MODEL_MEMORY_MB", "-1", "RTB_MULTI_MODEL_MEMORY_MB"),
        ("RTB_MULTI_MODEL_PAGE_SIZE", "0", "models_page_size must be at least 1"),
    ):
        with pytest.raises(SettingsError, match=fragment):
            Settings.from_env({name: value})
