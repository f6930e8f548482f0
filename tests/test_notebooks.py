"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel (nbclient +
ipykernel, as `jupyter nbconvert --execute` would), and the quick start displays its plot."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
#: Notebooks with their own test (tests/test_<name>_notebook.py, with more checks) run there.
GENERIC = [p for p in NOTEBOOKS
           if not (Path(__file__).parent / f"test_{p.stem}_notebook.py").exists()]


def test_there_are_notebooks() -> None:
    """The repository ships at least the quick-start notebook."""
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", GENERIC, ids=lambda p: p.stem)
def test_notebook_runs_in_a_kernel(path: Path) -> None:
    """Executing the notebook in a python3 kernel raises nothing; the quick start shows a PNG."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    if path.name == "quickstart.ipynb":
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert images, "the quick-start notebook displays no plot"
