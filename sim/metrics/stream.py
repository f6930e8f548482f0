"""The per-request table written while the engine runs (``sim.results: stream``).

The engine hands resolved requests over in batches (:data:`sim.engine.requests.FLUSH`, 65,536
rows); each batch becomes one Parquet row group, so memory holds one batch, whatever the
trace's length. The file has the columns and types of ``sim.results: full``'s
``requests.parquet`` (:data:`sim.metrics.result.REQUEST_COLUMNS`); rows come in the order
requests resolved (completed, failed, or in flight at the horizon), not in arrival order:
sort by ``request_id`` for that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.engine.record import RequestColumns
from sim.metrics.result import empty_requests_frame, requests_frame


class RequestTableWriter:
    """Append batches of resolved requests to a Parquet file, one row group per batch.

    ``path`` is created (or replaced) at once; :meth:`close` finishes the file and must be
    called, also when no request arrived (the file then holds the schema and no rows).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # The schema of full mode's table: int32 ids and token counts (token counts are
        # bounded by sim.bounds.MAX_TOKENS < 2**31), int8-coded categories.
        self.schema = pa.Schema.from_pandas(empty_requests_frame(), preserve_index=False)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.path, self.schema)
        self.rows = 0

    def add(self, req: RequestColumns, request_id: np.ndarray) -> None:
        """Write one batch: ``req``'s columns for the requests ``request_id`` (arrival order
        index, same length)."""
        if self._writer is None:
            raise ValueError(f"{self.path}: the request table is closed")
        frame = requests_frame(req, np.asarray(request_id, dtype=np.int64))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        self._writer.write_table(table.cast(self.schema))
        self.rows += len(frame)

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
