"""The multi-model registry's own rules: a private directory, model names, page tokens."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from serve.errors import InvalidModelError, InvalidPageTokenError
from serve.models import ModelRegistry, RegistryError
from serve.settings import Settings

SETTINGS = Settings(workers=1, multi_model=True, models_page_size=2)


def test_a_registry_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(RegistryError, match="writable by others"):
        ModelRegistry(SETTINGS, directory=shared)
    link = tmp_path / "link"
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    link.symlink_to(private)
    with pytest.raises(RegistryError, match="symbolic link"):
        ModelRegistry(SETTINGS, directory=link)
    created = ModelRegistry.private(SETTINGS)  # no directory given: a fresh private one
    assert os.stat(created.directory).st_mode & 0o077 == 0
    created.close()


@pytest.mark.parametrize("name", ["", "a\nb", "tab\there", "x" * 1025])
def test_names_must_be_printable_and_bounded(tmp_path: Path, name: str) -> None:
    registry = ModelRegistry(SETTINGS, directory=tmp_path / "registry")
    with pytest.raises(InvalidModelError, match="model_name"):
        asyncio.run(registry.load(name, str(tmp_path)))
    registry.close()


def test_a_page_token_is_checked(tmp_path: Path) -> None:
    registry = ModelRegistry(SETTINGS, directory=tmp_path / "registry")
    assert registry.page(None).entries == []
    for token in ("!!!", "@@@@", "a b"):
        with pytest.raises(InvalidPageTokenError):
            registry.page(token)
    registry.close()
