"""How to install this project and its extras, as error messages and hints say it.

The distribution is `fsmn-segmenter`: the name `segmenter` on PyPI belongs to an unrelated
package, so no line here may name it. A user installs from the checkout or a wheel built from
it, and a hint names that same source: the source tree this code runs from, else the path pip
recorded at install time (PEP 610's direct_url.json), else the distribution name. Code that
runs from its source tree is an editable install (`make run`'s `.venv`, `pip install -e`), so
its hint keeps it editable (`pip install -e`): a plain install of the checkout would replace
it with a copy that later `git pull`s do not reach.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import unquote, urlparse

DISTRIBUTION = "fsmn-segmenter"
CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def install_line(extra: str | None = None) -> str:
    """`pip install '<source>[extra]'` for this installation's source (checkout, wheel or name),
    `pip install -e '<checkout>[extra]'` where it runs from its checkout."""
    suffix = f"[{extra}]" if extra else ""
    editable = "-e " if checkout() else ""
    return f"pip install {editable}'{install_source()}{suffix}'"


def checkout() -> Path | None:
    """The source tree this code runs from (an editable install), if it does."""
    tree = Path(__file__).resolve().parents[1]
    return tree if (tree / "pyproject.toml").is_file() else None


def install_source() -> str:
    """Where this installation came from: its checkout, the wheel file, or the name on an index."""
    tree = checkout()
    if tree is not None:
        return str(tree)
    try:
        recorded = distribution(DISTRIBUTION).read_text("direct_url.json")
    except PackageNotFoundError:
        recorded = None
    url = json.loads(recorded).get("url", "") if recorded else ""
    if url.startswith("file://"):
        return unquote(urlparse(url).path)
    return DISTRIBUTION


def extra_hint(extra: str, what: str) -> str:
    """'`what` needs the `extra` extra: pip install ...' (torch's with the CPU build first)."""
    line = install_line(extra)
    if extra == "torch":  # a bare pip would fetch the multi-GB CUDA build of torch
        line = f"{CPU_TORCH} && {line}"
    return f"{what} needs the {extra} extra: {line}"
