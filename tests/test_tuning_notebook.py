"""notebooks/tuning.ipynb runs top to bottom in a real Jupyter kernel and shows its plot and export."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tuning.ipynb"


def test_tuning_notebook_runs_in_a_jupyter_kernel() -> None:
    """nbclient executes every cell in an ipykernel; the Pareto plot is displayed and a create body printed."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot was displayed"
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert '"autoscaling_config"' in printed and "curl" in printed
    # Small outputs: no cell prints a whole table of requests.
    assert sum(len(str(o)) for o in outputs) < 200_000
