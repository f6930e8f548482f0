"""Where relative paths in scenarios and workload specs point."""

from __future__ import annotations

from pathlib import Path


def _repo_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding pyproject.toml or .git."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return None


def resolve_path(path: str | Path, base_dir: str | Path) -> Path:
    """Resolve a scenario path: absolute as is; else against ``base_dir``, then the repo root.

    When the path exists in neither place the ``base_dir`` reading is returned, so that the
    error a reader raises names the place the user meant first.
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    base = Path(base_dir).resolve()
    first = base / p
    if first.exists():
        return first
    root = _repo_root(base)
    if root is not None and (root / p).exists():
        return (root / p).resolve()
    return first
