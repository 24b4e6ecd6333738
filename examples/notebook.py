"""Execute `sagemaker-sdk.ipynb` headless and render it, outputs included, as Markdown.

Runs in the SDK's venv (`make sdk`), whose `python3` kernel the notebook uses:

    .venv-sdk/bin/python examples/notebook.py --markdown docs/notebook.md

The notebook file itself is never written (it stays without outputs). On a cell error this
prints that cell's source and outputs (plain text, colours removed) and exits 1; the Markdown
is then not written.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import MarkdownExporter

NOTEBOOK = Path(__file__).resolve().with_name("sagemaker-sdk.ipynb")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="examples/notebook.py", description=__doc__)
    parser.add_argument(
        "--markdown", type=Path, required=True, help="write the executed notebook here"
    )
    parser.add_argument("--timeout", type=int, default=900, help="seconds a cell may take (900)")
    args = parser.parse_args(argv)

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=args.timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError:
        sys.stderr.write(describe_failure(notebook))
        return 1
    body, _ = MarkdownExporter().from_notebook_node(notebook)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(ANSI_ESCAPE.sub("", body))
    sys.stdout.write(f"wrote {args.markdown}\n")
    return 0


def describe_failure(notebook: Any) -> str:
    """The last cell that ran (the one that failed): its source, then what it printed."""
    ran = [cell for cell in notebook.cells if cell.get("execution_count")]
    if not ran:
        return "the notebook failed before its first cell ran\n"
    cell = max(ran, key=lambda c: c.execution_count)
    lines = [f"cell [{cell.execution_count}] failed:", cell.source, "--- its output ---"]
    for output in cell.outputs:
        if output.output_type == "stream":
            lines.append(output.text)
        elif output.output_type == "error":
            lines.append("\n".join(output.traceback))
        else:  # SageMaker's SDK shows tracebacks as rich display data
            lines.append(str(output.get("data", {}).get("text/plain", "")))
    return ANSI_ESCAPE.sub("", "\n".join(lines)) + "\n"


if __name__ == "__main__":
    sys.exit(main())
