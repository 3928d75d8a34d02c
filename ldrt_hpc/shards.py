"""The HDF5 shard store: the only module that touches h5py.

One file per (stage, shard): WORK/<stage>/shard-00007.h5, written by exactly one task.

Layout of a shard file
- root attributes: schema_version, stage, shard_index, shard_count, config_hash, package_version, created_at,
  item_count, quarantined_count.
- one group per table: `items` (the stage's schema) and `quarantine` (inputs that could not be processed).
- a fixed-width field (int64, float64, bool) is one dataset `<table>/<field>` of length item_count.
- a variable-length field (UTF-8 text, bytes such as PNG images, numeric arrays) is a group `<table>/<field>`
  holding `values` (everything concatenated) and `offsets` (item_count + 1 int64 boundaries).
  Why not HDF5 vlen types: filters act on vlen *descriptors* only, so fletcher32 would not cover the bytes of a
  string or an image. With the ragged layout every stored byte is in a checksummed, compressed chunk.

Commit protocol (a reader never sees a half file; only the shard's owner commits, see ldrt_hpc/ownership.py)
1. write `shard-00007.h5.tmp-<generation>-<host>-<pid>` (a name unique to this attempt); flush and fsync;
2. ask the fence whether this attempt still owns the shard; if not, delete the temporary file and stop;
3. os.replace() it to `shard-00007.h5`;
4. write the marker `shard-00007.done.json` (itself via a temporary name): item and quarantine counts, duration,
   host, scheduler job id, generation, the file's sha256 and size. A shard is complete iff its marker exists and
   matches; ask the fence once more and take the marker back if the shard was lost in between.
`verify` sets a bad shard aside: its marker becomes `shard-00007.corrupt.json` (with the problems) and the file
moves to `_corrupt/`, so that `status` reports it and `rerun` writes it again.
No pickle anywhere: only numbers, UTF-8 and raw bytes are stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

import h5py
import numpy as np

from . import __version__
from .errors import LostOwnership, ShardError  # noqa: F401
from .layout import corrupt_dir, corrupt_path, marker_path, shard_name, shard_path  # noqa: F401  (re-exported)

FieldKind = Literal["str", "bytes", "int64", "float64", "bool", "int64[]", "float32[]", "float64[]"]

_FIXED = {"int64": np.int64, "float64": np.float64, "bool": np.bool_}
_RAGGED = {"str": np.uint8, "bytes": np.uint8, "int64[]": np.int64, "float32[]": np.float32, "float64[]": np.float64}
_CHUNK = 4096  # elements per chunk of a 1-D dataset (values of ragged fields use larger chunks)
_VALUES_CHUNK = 1 << 18




@dataclass(frozen=True)
class Schema:
    """Field names and kinds of one table, with a version that is stored in every file."""

    version: int
    fields: Mapping[str, FieldKind]

    def __post_init__(self) -> None:
        for name, kind in self.fields.items():
            if kind not in _FIXED and kind not in _RAGGED:
                raise ValueError(f"field '{name}': unknown kind '{kind}'")
            if "/" in name or not name:
                raise ValueError(f"field name '{name}' is not allowed")

    def check(self, record: Mapping[str, Any]) -> None:
        missing = set(self.fields) - set(record)
        extra = set(record) - set(self.fields)
        if missing or extra:
            raise ValueError(f"record does not match schema: missing {sorted(missing)}, unexpected {sorted(extra)}")


QUARANTINE_SCHEMA = Schema(
    version=1,
    fields={"item_id": "str", "stage": "str", "reason": "str", "detail": "str"},
)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a small file through a temporary name; nothing is left behind when the write fails (ENOSPC, EROFS)."""
    tmp = path.with_name(f"{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")
    try:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def read_jsonl_log(path: Path) -> list:
    """The records of an append-only JSON-lines log (resume state). A last line cut short by a killed writer is
    dropped and truncated away, so that the next append starts on a clean line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    records, good_end = [], 0
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is unfinished, even if it parses
        try:
            if line.strip():
                records.append(json.loads(line))
        except ValueError:
            break
        good_end += len(line) + 1
    if good_end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(good_end)
    return records


def append_jsonl_log(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Append records (one line each) to a resume log and fsync: they survive a killed task."""
    with open(path, "a") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------------------
# Writing


class _TableWriter:
    """Buffers records of one table and appends them to resizable, chunked, checksummed datasets."""

    def __init__(self, group: h5py.Group, schema: Schema, flush_every: int = 256):
        self.group = group
        self.schema = schema
        self.count = 0
        self.flush_every = flush_every
        self.buffer: list[Mapping[str, Any]] = []
        filters = dict(compression="gzip", compression_opts=4, shuffle=True, fletcher32=True)
        group.attrs["schema_version"] = schema.version
        group.attrs["fields"] = json.dumps(dict(schema.fields))
        for name, kind in schema.fields.items():
            if kind in _FIXED:
                group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=_FIXED[kind], chunks=(_CHUNK,), **filters)
            else:
                sub = group.create_group(name)
                sub.attrs["kind"] = kind
                # bytes (PNG crops) are compressed already: gzip would gain ~2 % and cost a chunk inflate per
                # random read (training reads images in shuffled order: ~5 ms vs ~0.5 ms per image)
                values_filters = dict(fletcher32=True) if kind == "bytes" else filters
                sub.create_dataset(
                    "values", shape=(0,), maxshape=(None,), dtype=_RAGGED[kind], chunks=(_VALUES_CHUNK,),
                    **values_filters
                )
                offsets = sub.create_dataset(
                    "offsets", shape=(1,), maxshape=(None,), dtype=np.int64, chunks=(_CHUNK,), **filters
                )
                offsets[0] = 0

    def append(self, record: Mapping[str, Any]) -> None:
        self.schema.check(record)
        self.buffer.append(record)
        if len(self.buffer) >= self.flush_every:
            self.flush()

    @staticmethod
    def _encode(kind: str, value: Any) -> np.ndarray:
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError(f"expected str, got {type(value).__name__}")
            return np.frombuffer(value.encode("utf-8"), dtype=np.uint8)
        if kind == "bytes":
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"expected bytes, got {type(value).__name__}")
            return np.frombuffer(bytes(value), dtype=np.uint8)
        return np.asarray(value, dtype=_RAGGED[kind]).reshape(-1)

    def flush(self) -> None:
        if not self.buffer:
            return
        n = len(self.buffer)
        for name, kind in self.schema.fields.items():
            column = [record[name] for record in self.buffer]
            if kind in _FIXED:
                dataset = self.group[name]
                dataset.resize((self.count + n,))
                dataset[self.count :] = np.asarray(column, dtype=_FIXED[kind])
                continue
            try:
                parts = [self._encode(kind, value) for value in column]
            except TypeError as exc:
                raise TypeError(f"field '{name}': {exc}") from None
            values, offsets = self.group[name]["values"], self.group[name]["offsets"]
            start = int(offsets[self.count])
            lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=n)
            new_offsets = start + np.cumsum(lengths)
            total = int(new_offsets[-1])
            values.resize((total,))
            if total > start:
                values[start:total] = np.concatenate(parts)
            offsets.resize((self.count + n + 1,))
            offsets[self.count + 1 :] = new_offsets
        self.count += n
        self.buffer.clear()


class ShardWriter:
    """Writes one shard under a temporary name; `commit()` renames it into place and writes the marker.

    Used as a context manager: an exception (or a killed process) leaves no visible shard, only a temporary file
    that the next attempt removes.
    """

    def __init__(
        self,
        stage_dir: Path,
        index: int,
        *,
        stage: str,
        count: int,
        schema: Schema,
        config_hash: str,
        attrs: Mapping[str, Any] | None = None,
        generation: str = "",
        fence: Callable[[], str | None] | None = None,
    ):
        self.stage_dir = Path(stage_dir)
        self.generation = generation
        self.fence = fence
        """Returns None while this attempt owns the shard, else the reason it does not (checked at commit)."""
        self.index = index
        self.stage = stage
        self.path = shard_path(self.stage_dir, index)
        self.marker = marker_path(self.stage_dir, index)
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        tag = f"{generation}-" if generation else ""
        self.tmp_path = self.path.with_name(f"{self.path.name}.tmp-{tag}{socket.gethostname()}-{os.getpid()}")
        self.started = time.time()
        try:
            self.file = h5py.File(self.tmp_path, "w", libver="latest")
        except BaseException:
            self.tmp_path.unlink(missing_ok=True)
            raise
        root = self.file.attrs
        root["schema_version"] = schema.version
        root["stage"] = stage
        root["shard_index"] = index
        root["shard_count"] = count
        root["config_hash"] = config_hash
        root["package_version"] = __version__
        root["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        for key, value in (attrs or {}).items():
            root[key] = value
        self.items = _TableWriter(self.file.create_group("items"), schema)
        self.quarantine = _TableWriter(self.file.create_group("quarantine"), QUARANTINE_SCHEMA)
        self.committed = False

    def remove_other_attempts(self) -> int:
        """Delete the temporary files of other attempts at this shard (killed, or fenced off); only the owner may."""
        removed = 0
        for stale in self.stage_dir.glob(f"{self.path.name}.tmp-*"):
            if stale != self.tmp_path:
                stale.unlink(missing_ok=True)
                removed += 1
        return removed

    def _check_fence(self, when: str) -> None:
        problem = self.fence() if self.fence else None
        if problem:
            raise LostOwnership(f"{self.path.name}: output discarded {when}: {problem}")

    def append(self, record: Mapping[str, Any]) -> None:
        self.items.append(record)

    def add_quarantine(self, item_id: str, reason: str, detail: str = "") -> None:
        self.quarantine.append({"item_id": item_id, "stage": self.stage, "reason": reason, "detail": detail})

    def commit(self, job_id: str | None = None, stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Finish the file, rename it into place, write the marker; returns the marker's content."""
        self.items.flush()
        self.quarantine.flush()
        self.file.attrs["item_count"] = self.items.count
        self.file.attrs["quarantined_count"] = self.quarantine.count
        self.file.flush()
        self.file.close()
        with open(self.tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        self._check_fence("before the rename")
        if self.marker.exists():
            self.marker.unlink()  # a marker always describes the file beside it, never an older one
        os.replace(self.tmp_path, self.path)
        marker = {
            "stage": self.stage,
            "shard_index": self.index,
            "item_count": self.items.count,
            "quarantined_count": self.quarantine.count,
            "duration_s": round(time.time() - self.started, 3),
            "host": socket.gethostname(),
            "job_id": job_id,
            "generation": self.generation,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "bytes": self.path.stat().st_size,
            "sha256": file_sha256(self.path),
            "stats": dict(stats or {}),
        }
        atomic_write_text(self.marker, json.dumps(marker, indent=1, sort_keys=True) + "\n")
        self.committed = True
        try:
            self._check_fence("after the rename (the shard was taken over meanwhile)")
        except LostOwnership:
            current = read_marker(self.stage_dir, self.index)
            if current is not None and current.get("generation") == self.generation:
                self.marker.unlink(missing_ok=True)  # the new owner's commit replaces the file
            raise
        return marker

    def abort(self) -> None:
        if not self.committed:
            try:
                self.file.close()
            except Exception:  # noqa: BLE001 - closing a broken file must not hide the original error
                pass
            try:
                self.tmp_path.unlink(missing_ok=True)
            except OSError:  # a read-only file system: the next owner removes it
                pass

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self.committed:
            self.abort()


# --------------------------------------------------------------------------------------------------------------
# Reading


def _unreadable(path: Path, what: str, exc: BaseException) -> ShardError:
    stage = Path(path).parent.name
    return ShardError(f"{path}: cannot read {what} ({exc}); the file is damaged or was changed after its commit: "
                      f"run `ldrt-hpc verify {stage}` (it sets bad shards aside for `ldrt-hpc rerun {stage}`)")


class _TableReader:
    def __init__(self, group: h5py.Group, path: Path):
        self.group = group
        self.path = path
        self.fields: dict[str, str] = json.loads(group.attrs["fields"])
        self._cache: dict[str, tuple[np.ndarray, np.ndarray] | np.ndarray] = {}

    def __len__(self) -> int:
        first = next(iter(self.fields))
        node = self.group[first]
        return len(node["offsets"]) - 1 if isinstance(node, h5py.Group) else len(node)

    def _column(self, name: str):
        if name not in self._cache:
            try:
                node = self.group[name]
                if isinstance(node, h5py.Group):
                    self._cache[name] = (node["offsets"][:], node["values"])
                else:
                    self._cache[name] = node[:]
            except (OSError, KeyError) as exc:
                raise _unreadable(self.path, f"{self.group.name}/{name}", exc) from None
        return self._cache[name]

    def _value(self, name: str, index: int) -> Any:
        kind = self.fields[name]
        column = self._column(name)
        if kind in _FIXED:
            return column[index].item()
        offsets, values = column
        try:
            raw = values[offsets[index] : offsets[index + 1]]
        except OSError as exc:
            raise _unreadable(self.path, f"{self.group.name}/{name} of record {index}", exc) from None
        if kind == "str":
            return raw.tobytes().decode("utf-8")
        if kind == "bytes":
            return raw.tobytes()
        return raw

    def record(self, index: int, names: Sequence[str] | None = None) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} out of range (0..{len(self) - 1})")
        return {name: self._value(name, index) for name in (self.fields if names is None else names)}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self)):
            yield self.record(index)


class ShardReader:
    """Read access to one committed shard: iterate, random access, quarantine records, attributes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.file = h5py.File(self.path, "r")
            self.items = _TableReader(self.file["items"], self.path)
            self.quarantine = _TableReader(self.file["quarantine"], self.path)
        except (OSError, KeyError) as exc:
            if hasattr(self, "file"):
                self.file.close()
            raise _unreadable(self.path, "the shard", exc) from None

    @property
    def attrs(self) -> dict[str, Any]:
        return {key: (value.item() if hasattr(value, "item") else value) for key, value in self.file.attrs.items()}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items.record(index)

    def fields(self, index: int, names: Sequence[str]) -> dict[str, Any]:
        """Some fields of one record, the others not read (e.g. a figure's PNG bytes for training)."""
        return self.items.record(index, names)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_marker(stage_dir: Path, index: int) -> dict[str, Any] | None:
    """The marker of a shard, or None when the shard is not complete."""
    path = marker_path(stage_dir, index)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: unreadable marker: {exc}") from None


def is_complete(stage_dir: Path, index: int) -> bool:
    """Cheap completeness test: the marker exists and the file beside it has the size it records."""
    return completion_problem(stage_dir, index) == ""


def completion_problem(stage_dir: Path, index: int) -> str | None:
    """Cheap: None without a marker, "" when the file beside it has the recorded size, else what is wrong."""
    marker = read_marker(stage_dir, index)
    if marker is None:
        return None
    path = shard_path(stage_dir, index)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{path.name} is missing although its marker exists"
    if size != marker.get("bytes"):
        return f"{path.name} has {size} bytes but its marker records {marker.get('bytes')} (truncated or replaced)"
    return ""


def set_aside_corrupt(stage_dir: Path, index: int, problems: Sequence[str]) -> Path:
    """Record a bad shard: its marker becomes `shard-N.corrupt.json` (with the problems), the file moves to
    `_corrupt/`. Nothing is deleted; `status` then reports the shard as corrupt and `rerun` writes it again."""
    stage_dir = Path(stage_dir)
    try:
        marker = read_marker(stage_dir, index)
    except ShardError:
        marker = None
    record = {"shard_index": index, "problems": list(problems), "detected_at": time.time(), "marker": marker}
    path = shard_path(stage_dir, index)
    if path.exists():
        aside = corrupt_dir(stage_dir) / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}.h5"
        aside.parent.mkdir(exist_ok=True)
        os.replace(path, aside)
        record["moved_to"] = str(aside)
    atomic_write_text(corrupt_path(stage_dir, index), json.dumps(record, indent=1) + "\n")
    marker_path(stage_dir, index).unlink(missing_ok=True)
    return corrupt_path(stage_dir, index)


def read_corrupt(stage_dir: Path, index: int) -> dict[str, Any] | None:
    try:
        return json.loads(corrupt_path(stage_dir, index).read_text())
    except (FileNotFoundError, ValueError):
        return None


def iter_stage(stage_dir: Path, indices: Sequence[int]) -> Iterator[dict[str, Any]]:
    """Every item of the given complete shards of a stage, shard by shard."""
    for index in indices:
        with ShardReader(shard_path(stage_dir, index)) as reader:
            yield from reader


@dataclass
class VerifyResult:
    index: int
    ok: bool
    problems: list[str] = field(default_factory=list)
    item_count: int | None = None


def verify_shard(stage_dir: Path, index: int) -> VerifyResult:
    """Check one shard completely: marker, size, sha256, every chunk's fletcher32, counts and offsets."""
    result = VerifyResult(index=index, ok=False)
    path = shard_path(stage_dir, index)
    try:
        marker = read_marker(stage_dir, index)
    except ShardError as exc:
        result.problems.append(str(exc))
        return result
    if marker is None:
        result.problems.append("no completion marker")
        return result
    if not path.is_file():
        result.problems.append(f"{path.name} is missing")
        return result
    if path.stat().st_size != marker["bytes"]:
        result.problems.append(f"size {path.stat().st_size} != marker {marker['bytes']}")
    if file_sha256(path) != marker["sha256"]:
        result.problems.append("sha256 differs from the marker (file changed or corrupted)")
    try:
        with h5py.File(path, "r") as handle:
            for table in ("items", "quarantine"):
                group = handle[table]
                lengths = set()
                for name in json.loads(group.attrs["fields"]):
                    node = group[name]
                    try:
                        if isinstance(node, h5py.Group):
                            offsets = node["offsets"][:]
                            values = node["values"][:]  # reading every chunk checks its fletcher32
                            if offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != len(values):
                                result.problems.append(f"{table}/{name}: inconsistent offsets")
                            lengths.add(len(offsets) - 1)
                        else:
                            lengths.add(len(node[:]))
                    except OSError as exc:
                        result.problems.append(f"{table}/{name}: checksum or read error: {exc}")
                if len(lengths) > 1:
                    result.problems.append(f"{table}: fields have different lengths {sorted(lengths)}")
                count = lengths.pop() if len(lengths) == 1 else None
                key = "item_count" if table == "items" else "quarantined_count"
                if count is not None and count != marker[key]:
                    result.problems.append(f"{table}: {count} records but the marker says {marker[key]}")
                if count is not None and count != handle.attrs[key]:
                    result.problems.append(f"{table}: {count} records but the file attribute says {handle.attrs[key]}")
                if table == "items":
                    result.item_count = count
    except (OSError, KeyError, ValueError) as exc:
        result.problems.append(f"cannot read {path.name}: {exc}")
    result.ok = not result.problems
    return result
