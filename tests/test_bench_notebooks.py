"""The benchmark notebooks execute top to bottom in a real Jupyter kernel (nbclient), so a
plot that never renders or a cell that raises is caught; their committed outputs stay small."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["policy_comparison.ipynb", "spot.ipynb"])
def test_notebook_executes_in_a_kernel(name: str) -> None:
    """Every cell runs in an IPython kernel; every figure cell displays an image."""
    import nbformat
    from nbclient import NotebookClient

    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    assert path.stat().st_size < 50_000  # committed without bulky outputs
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            kinds = {k for out in cell.outputs for k in out.get("data", {})}
            assert "image/png" in kinds, f"{name}: a figure cell displayed no image"
