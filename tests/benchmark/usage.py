"""A command's refusal of bad usage: exit status 2 and a message on stderr (argparse's way)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest


def refusal(
    main: Callable[[list[str]], Any], argv: Sequence[str], capsys: pytest.CaptureFixture[str]
) -> str:
    """What `main(argv)` printed on stderr when it refused `argv` with exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err
