"""Every notebook in notebooks/ runs top to bottom (code cells executed in order, headless)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    """The repository ships at least the quick-start notebook."""
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executing the notebook's code cells in one namespace raises nothing."""
    matplotlib.use("Agg")
    monkeypatch.chdir(path.parent)
    nb = json.loads(path.read_text())
    namespace: dict[str, object] = {"__name__": "__main__"}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # IPython magics are not Python; the notebooks keep them out of the code cells.
        assert not any(line.lstrip().startswith(("%", "!")) for line in source.splitlines())
        exec(compile(source, f"{path.name}[cell {i}]", "exec"), namespace)  # noqa: S102
