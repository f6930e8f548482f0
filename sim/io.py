"""File input and output: read YAML/JSON configs, write a run's results to a directory.

The engine and metrics never touch files; this module (and :mod:`sim.report`) does
(DESIGN §2). Secrets are masked again here before anything is written (defence in depth).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import math
import os
import re
import shutil
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sim.errors import ConfigError
from sim.metrics.result import mask_secrets, to_jsonable

if TYPE_CHECKING:
    from sim.metrics.result import Result

__all__ = [
    "RESULT_FILES",
    "atomic_result_dir",
    "check_result_dir",
    "loads_json",
    "loads_yaml",
    "read_text",
    "read_yaml_or_json",
    "result_json",
    "slugify",
    "verify_manifest",
    "write_json",
    "write_result",
    "write_run",
]


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loader that rejects duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(
    loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


#: Deepest nesting a config file may have: scenarios need about 6 levels; far deeper input
#: (thousands) would overflow the parser's and the validator's recursion.
MAX_DEPTH = 64


def _too_deep(data: Any) -> bool:
    """Whether ``data`` nests mappings/lists deeper than :data:`MAX_DEPTH` (iteratively)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _depth_error(source: str) -> ConfigError:
    return ConfigError(
        f"nested more than {MAX_DEPTH} levels deep; a scenario needs fewer than 10", source=source
    )


def _decode(raw: bytes, source: str) -> str:
    """UTF-8 text of a file; a bad byte is an error naming its line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {col} cannot be decoded "
            "(save the file as UTF-8)", source=f"{source}:{line}",
        ) from None


def loads_yaml(text: str, source: str) -> Any:
    """Parse YAML strictly: a duplicated key is an error naming both lines; syntax errors
    name their line; nesting deeper than :data:`MAX_DEPTH` is an error."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = exc.problem or "syntax error"
        context = f" {exc.context}" if exc.context else ""
        col = f" (column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"invalid YAML: {problem}{context}{col}", source=where) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", source=source) from None
    except RecursionError:
        raise _depth_error(source) from None
    if _too_deep(data):
        raise _depth_error(source)
    return data


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def loads_json(text: str, source: str) -> Any:
    """Parse JSON strictly: a duplicated key in an object is an error naming both lines (the
    standard library keeps the last value silently); ``NaN``/``Infinity`` are not JSON and
    are errors; nesting deeper than :data:`MAX_DEPTH` is an error."""

    def bad_constant(name: str) -> Any:
        raise ConfigError(f"{name} is not a JSON number; write a finite number", source=source)

    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=bad_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", source=f"{source}:{exc.lineno}"
        ) from None
    except RecursionError:
        raise _depth_error(source) from None
    except _DuplicateKey as dup:
        # JSON is YAML: the strict YAML loader locates both occurrences of the key.
        try:
            loads_yaml(text, source)
        except ConfigError as exc:
            if "duplicate key" in str(exc):
                raise ConfigError(exc.detail.replace("invalid YAML: ", ""),
                                  source=exc.source) from None
        raise ConfigError(f"duplicate key {dup.key!r} in an object", source=source) from None
    if _too_deep(data):
        raise _depth_error(source)
    return data


def read_text(path: str | Path, what: str = "a YAML or JSON file") -> str:
    """A text file's content with errors naming the file: missing, a folder, unreadable, or
    not UTF-8 (with the line of the first bad byte)."""
    p = Path(path)
    if "\x00" in str(p):
        raise ConfigError("a file name cannot contain a NUL character", source=repr(str(p)))
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(p)) from None
    except IsADirectoryError:
        raise ConfigError(f"is a folder, expected {what}", source=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file ({exc.strerror or exc})", source=str(p)) from None
    return _decode(raw, str(p))


def read_yaml_or_json(path: str | Path) -> dict[str, Any]:
    """Read a mapping from a ``.json`` file, or from YAML for any other extension.

    Every config file goes through here (scenarios, create bodies, profiles, catalogs), so
    each is read one way: missing files, folders, non-UTF-8 bytes (with their line), syntax
    errors (with their line), duplicated keys (both lines, JSON too), nesting deeper than
    :data:`MAX_DEPTH` and non-mapping documents raise :class:`~sim.errors.ConfigError`
    naming the file.
    """
    p = Path(path)
    text = read_text(p)
    data = loads_json(text, str(p)) if p.suffix.lower() == ".json" else loads_yaml(text, str(p))
    if data is None:
        raise ConfigError("file is empty, expected a mapping of settings", source=str(p))
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping at the top level, got {type(data).__name__}", source=str(p)
        )
    return data


def _finite(obj: Any) -> Any:
    # json.dumps writes NaN/Infinity, which is not JSON; every non-finite float becomes null.
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def result_json(summary: dict[str, Any]) -> str:
    """The summary as strict JSON text (indent 2, key order kept, NaN as null, secrets masked)."""
    clean = _finite(to_jsonable(mask_secrets(summary)))
    return json.dumps(clean, indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_json(obj: dict[str, Any], path: str | Path) -> Path:
    """Write a dict as strict JSON (NaN as null, secrets masked) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(result_json(obj), encoding="utf-8")
    return p


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it, renamed into place, so a
    reader sees the old file or the new one, never half of it. The file gets the mode a plain
    ``open`` would (0o666 less the umask), not the temporary file's 0o600.

    Raises:
        IsADirectoryError: ``path`` is a folder (the message names ``path``, not the temporary).
        OSError: the folder cannot be created or written.
    """
    import tempfile

    out = Path(path)
    if out.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def write_result(result: Result, out_dir: str | Path) -> dict[str, Path]:
    """Write summary.json, requests/workers parquet, decisions/timeline/queue CSV; return their paths.

    Writes straight into ``out_dir``; :func:`write_run` is the all-or-nothing form.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": out / "summary.json",
        "requests": out / "requests.parquet",
        "workers": out / "workers.parquet",
        "decisions": out / "decisions.csv",
        "timeline": out / "timeline.csv",
        "queue": out / "queue.csv",
    }
    write_json(result.summary, paths["summary"])
    mode = result.summary.get("sim", {}).get("results")
    if mode == "full":
        result.requests.to_parquet(paths["requests"], engine="pyarrow", index=False)
    elif not (mode == "stream" and paths["requests"].is_file()):  # streamed during the run
        del paths["requests"]  # no per-request table was kept
    result.workers.to_parquet(paths["workers"], engine="pyarrow", index=False)
    result.decisions.to_csv(paths["decisions"], index=False)
    result.timeline.to_csv(paths["timeline"], index=False)
    result.queue.to_csv(paths["queue"], index=False)
    return paths


# --- all-or-nothing result folders ----------------------------------------------------------

#: Names a results folder may hold: a folder holding anything else is not replaced (it may be
#: the user's own folder given as --out by mistake).
RESULT_FILES = frozenset({
    "summary.json", "replications.json", "requests.parquet", "workers.parquet", "decisions.csv",
    "timeline.csv", "queue.csv", "report.md", "report.html", "latency_cdf.png",
    "workers_queue.png", "cost.png", "replications.png", "sensitivity.csv", "sensitivity.png",
})  # fmt: skip
_RESULT_DIR = re.compile(r"seed-\d+")
_PARTIAL = ".partial-"
_OLD = ".old-"


def slugify(name: str, *, default: str = "run") -> str:
    """A file-name-safe form of a scenario name: ASCII letters, digits, ``.``, ``_`` and ``-``.

    ``"../../etc"`` → ``"etc"``, ``"/abs/x y"`` → ``"abs-x-y"``, ``"Chat 8B (v2)"`` →
    ``"Chat-8B-v2"``: a name never acts as a path (no separators, no leading dot, no NUL).
    Empty results fall back to ``default``; at most 100 characters.
    """
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "-", text)
    text = re.sub(r"-{2,}", "-", text).strip("-._")[:100].strip("-._")
    return text or default


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_leftovers(out: Path) -> None:
    """Remove staging folders of earlier runs into ``out`` that were killed (their process is
    gone) and previous results a killed swap left behind (restoring one if ``out`` is missing)."""
    parent = out.parent
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        name = entry.name
        if name.startswith(f".{out.name}{_OLD}") and entry.is_dir():
            if not out.exists():
                entry.rename(out)  # killed between the two renames of the fallback swap
            else:
                shutil.rmtree(entry, ignore_errors=True)
        elif name.startswith(f".{out.name}{_PARTIAL}") and entry.is_dir():
            pid = name.rsplit("-", 1)[-1]
            if not (pid.isdigit() and _pid_alive(int(pid))):
                shutil.rmtree(entry, ignore_errors=True)


def check_result_dir(out: str | Path, option: str = "--out") -> None:
    """Raise :class:`ConfigError` unless ``out`` is new, empty or a previous results folder
    (only names a run writes): a run replaces the whole folder."""
    _check_replaceable(Path(out), option)


def _check_replaceable(out: Path, option: str) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder", source=option)
    if not out.is_dir():
        return
    foreign = sorted(
        e.name for e in out.iterdir()
        if not (e.name in RESULT_FILES or (e.is_dir() and _RESULT_DIR.fullmatch(e.name)))
    )  # fmt: skip
    if foreign:
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise ConfigError(
            f"{out} holds files a run did not write ({shown}); a run replaces its whole output "
            "folder, so give a new or empty folder, or a previous results folder",
            source=option,
        )


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_entries(folder: Path, skip: str, *, sync: bool = False) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file under ``folder`` but ``skip``; ``sync`` also flushes them
    (and the folders) to disk, so the rename that publishes them cannot overtake their data."""
    files: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_dir():
            if sync:
                _fsync(p)
            continue
        if rel == skip:
            continue
        digest = hashlib.sha256()
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
            if sync:
                os.fsync(fh.fileno())
        files[rel] = {"bytes": p.stat().st_size, "sha256": digest.hexdigest()}
    return files


def _add_manifest(folder: Path, summary_name: str, seed: Any) -> None:
    """Hash every file and write the manifest into the summary file, written last."""
    from sim import __version__

    files = _file_entries(folder, skip=summary_name, sync=True)
    path = folder / summary_name
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["manifest"] = {
        "complete": True,
        "simulator_version": __version__,
        "seed": seed,
        "files": files,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    _fsync(tmp)
    tmp.replace(path)
    _fsync(folder)


@contextmanager
def atomic_result_dir(
    out_dir: str | Path,
    *,
    seed: Any,
    summary_name: str = "summary.json",
    option: str = "--out",
) -> Iterator[Path]:
    """Stage a run's output folder and put it in place only when every file is written.

    Yields a staging folder beside ``out_dir`` (``.NAME.partial-PID``) to write into. On a
    clean exit every file is hashed, the manifest (files with bytes and SHA-256, ``seed``,
    simulator version) is added to ``summary_name`` (written last), and the staging folder
    replaces ``out_dir`` in one atomic exchange (``renameat2``; elsewhere two renames, and the
    next run restores the previous result if a kill fell between them). On an exception, or
    if the process is killed, ``out_dir`` keeps the previous result: the staging folder is
    removed now or by the next run into the same folder. Files of a previous result are the
    only ones replaced: a folder holding anything else is a :class:`ConfigError`.
    """
    out = Path(out_dir)
    _check_replaceable(out, option)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(out)
        stage = out.parent / f".{out.name}{_PARTIAL}{os.getpid()}"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename or out}: {exc.strerror or exc}",
                          source=option) from None
    try:
        yield stage
        _add_manifest(stage, summary_name, seed)
        if not out.exists():
            stage.rename(out)
        elif _exchange(stage, out):
            shutil.rmtree(stage, ignore_errors=True)  # now holds the previous result
        else:
            old = out.parent / f".{out.name}{_OLD}{os.getpid()}"
            out.rename(old)
            stage.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        _fsync(out.parent)
    except BaseException as exc:
        shutil.rmtree(stage, ignore_errors=True)
        kept = "the previous result there is intact" if out.exists() else "nothing was written"
        if isinstance(exc, OSError):
            where = exc.filename if exc.filename is not None else out
            raise ConfigError(
                f"cannot write {where}: {exc.strerror or exc}; {kept}", source=option
            ) from None
        exc.add_note(f"{out}: {kept}")
        raise


def write_run(result: Result, out_dir: str | Path, *, report: bool = True,
              option: str = "--out") -> Path:
    """Write one run's files (and ``report.md``/``report.html`` with plots) all or nothing.

    See :func:`atomic_result_dir`; returns ``out_dir``.
    """
    with atomic_result_dir(out_dir, seed=result.summary["sim"]["seed"], option=option) as stage:
        write_files(result, stage, report=report)
    return Path(out_dir)


def write_files(result: Result, folder: Path, *, report: bool = True) -> None:
    """Write one run's files, and the report with its plots, into ``folder`` as it is (the
    staging folder of :func:`atomic_result_dir`)."""
    write_result(result, folder)
    if report:
        from sim.report import write_report

        write_report(result, folder)


def verify_manifest(out_dir: str | Path, summary_name: str = "summary.json") -> list[str]:
    """Problems with a results folder against its manifest (empty list: complete and intact).

    Checks that the summary has a manifest, every listed file exists with its size and
    SHA-256, and no unlisted file sits in the folder.
    """
    out = Path(out_dir)
    try:
        summary = json.loads((out / summary_name).read_text(encoding="utf-8"))
        manifest = summary["manifest"]
        listed = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{out / summary_name}: no readable manifest ({exc})"]
    problems = []
    actual = _file_entries(out, skip=summary_name)
    for name, meta in listed.items():
        if name not in actual:
            problems.append(f"{name}: missing")
        elif actual[name] != meta:
            problems.append(f"{name}: size or hash differs from the manifest")
    problems += [f"{name}: not in the manifest" for name in actual if name not in listed]
    return problems
