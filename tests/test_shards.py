"""The HDF5 shard store: round trips, atomic commit, corruption detection, markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from ldrt_hpc.shards import (
    Schema,
    ShardReader,
    ShardWriter,
    file_sha256,
    is_complete,
    iter_stage,
    marker_path,
    read_marker,
    shard_path,
    verify_shard,
)

ALL_KINDS = Schema(
    version=3,
    fields={
        "text": "str", "blob": "bytes", "count": "int64", "score": "float64", "flag": "bool",
        "ids": "int64[]", "vec32": "float32[]", "vec64": "float64[]",
    },
)


def make_records(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        records.append({
            "text": ["", "plain", "ünïcødé – 剂量 0.1 Gy", "x" * 5000][i % 4] + str(i),
            "blob": b"" if i % 5 == 0 else rng.bytes(int(rng.integers(1, 3000))),
            "count": int(rng.integers(-(2**62), 2**62)),
            "score": float(rng.normal()),
            "flag": bool(i % 2),
            "ids": rng.integers(0, 1000, size=i % 7),
            "vec32": rng.random(i % 3, dtype=np.float32),
            "vec64": rng.random(5),
        })
    return records


def write_shard(directory, records, index=0, quarantine=(), flush_every=None):
    with ShardWriter(directory, index, stage="test", count=4, schema=ALL_KINDS, config_hash="abc") as writer:
        writer.remove_other_attempts()  # what the runner does once it knows it owns the shard
        if flush_every:
            writer.items.flush_every = flush_every
        for record in records:
            writer.append(record)
        for item in quarantine:
            writer.add_quarantine(*item)
        return writer.commit(job_id="42_0", stats={"n": len(records)})


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray) or isinstance(b[key], np.ndarray):
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
        else:
            assert a[key] == b[key], key


def test_round_trip_every_kind(tmp_path):
    records = make_records(600)
    marker = write_shard(tmp_path, records, flush_every=64, quarantine=[("p1", "timeout", "after 120 s")])
    with ShardReader(shard_path(tmp_path, 0)) as reader:
        assert len(reader) == 600
        for original, stored in zip(records, reader):
            assert_same(original, stored)
        assert_same(records[123], reader[123])  # random access
        assert reader[599]["text"].endswith("599")
        with pytest.raises(IndexError):
            reader[600]
        assert list(reader.quarantine) == [{"item_id": "p1", "stage": "test", "reason": "timeout", "detail": "after 120 s"}]
        attrs = reader.attrs
    assert attrs["stage"] == "test" and attrs["shard_index"] == 0 and attrs["shard_count"] == 4
    assert attrs["schema_version"] == 3 and attrs["config_hash"] == "abc" and attrs["item_count"] == 600
    assert {"package_version", "created_at", "quarantined_count"} <= set(attrs)
    assert marker == read_marker(tmp_path, 0)
    assert marker["item_count"] == 600 and marker["quarantined_count"] == 1 and marker["job_id"] == "42_0"
    assert marker["sha256"] == file_sha256(shard_path(tmp_path, 0)) and marker["stats"] == {"n": 600}
    assert is_complete(tmp_path, 0) and verify_shard(tmp_path, 0).ok


def test_every_dataset_is_chunked_checksummed_and_compressed_except_bytes(tmp_path):
    write_shard(tmp_path, make_records(10))
    with h5py.File(shard_path(tmp_path, 0)) as handle:
        datasets = []
        handle.visititems(lambda name, node: datasets.append((name, node)) if isinstance(node, h5py.Dataset) else None)
        assert len(datasets) >= 13
        kinds = json.loads(handle["items"].attrs["fields"])
        for name, dataset in datasets:
            assert dataset.fletcher32 and dataset.chunks, dataset.name
            assert dataset.dtype.kind in "iufb", f"{dataset.name}: no vlen/object data (checksums cover every byte)"
            field = name.split("/")[1] if name.count("/") >= 1 else ""
            # PNG bytes are compressed already: no gzip on them (random reads while training stay cheap)
            raw_bytes = name.startswith("items/") and kinds.get(field) == "bytes" and name.endswith("/values")
            assert dataset.compression == (None if raw_bytes else "gzip"), dataset.name
        assert any(name.startswith("items/") and kinds.get(name.split("/")[1]) == "bytes" for name, _ in datasets)


def test_empty_shard_and_iter_stage(tmp_path):
    write_shard(tmp_path, [], index=0)
    write_shard(tmp_path, make_records(3), index=1)
    with ShardReader(shard_path(tmp_path, 0)) as reader:
        assert len(reader) == 0 and list(reader) == []
    assert [r["text"] for r in iter_stage(tmp_path, [0, 1])] == ["0", "plain1", "ünïcødé – 剂量 0.1 Gy2"]
    assert verify_shard(tmp_path, 0).ok


def test_bad_records_are_rejected_by_name(tmp_path):
    with ShardWriter(tmp_path, 0, stage="test", count=1, schema=ALL_KINDS, config_hash="abc") as writer:
        with pytest.raises(ValueError, match="missing .*'vec64'"):
            writer.append({k: v for k, v in make_records(1)[0].items() if k != "vec64"})
        bad = make_records(1)[0] | {"text": b"bytes, not text"}
        writer.append(bad)
        with pytest.raises(TypeError, match="field 'text': expected str"):
            writer.commit()
    assert not shard_path(tmp_path, 0).exists() and not list(tmp_path.glob("*.tmp-*"))


KILLED_WRITER = """
import os, sys
from ldrt_hpc.shards import ShardWriter
from tests.test_shards import ALL_KINDS, make_records
writer = ShardWriter(sys.argv[1], 0, stage="test", count=1, schema=ALL_KINDS, config_hash="abc")
for record in make_records(300):
    writer.append(record)
writer.items.flush()
os.kill(os.getpid(), 9)  # killed like an OOM or a scancel: before the rename
"""


def test_killed_writer_leaves_no_visible_shard(tmp_path):
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=os.getcwd())
    assert proc.returncode == -9
    assert not shard_path(tmp_path, 0).exists() and not marker_path(tmp_path, 0).exists()
    assert len(list(tmp_path.glob("shard-00000.h5.tmp-*"))) == 1  # the half file under its temporary name
    assert not is_complete(tmp_path, 0)
    assert verify_shard(tmp_path, 0).problems == ["no completion marker"]
    write_shard(tmp_path, make_records(5))  # the next attempt cleans up and succeeds
    assert not list(tmp_path.glob("*.tmp-*")) and verify_shard(tmp_path, 0).ok


def _flip(path, offset):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_flipped_byte_in_data_is_detected(tmp_path):
    write_shard(tmp_path, make_records(50))
    path = shard_path(tmp_path, 0)
    with h5py.File(path) as handle:
        info = handle["items/blob/values"].id.get_chunk_info(0)
    _flip(path, info.byte_offset + info.size // 2)
    result = verify_shard(tmp_path, 0)
    assert not result.ok
    assert any("sha256" in p for p in result.problems)
    assert any(p.startswith("items/blob: checksum or read error") for p in result.problems), result.problems


def test_flipped_byte_anywhere_is_detected(tmp_path):
    write_shard(tmp_path, make_records(20))
    path = shard_path(tmp_path, 0)
    _flip(path, 200)  # in the superblock/metadata region, outside every chunk
    result = verify_shard(tmp_path, 0)
    assert not result.ok and result.problems


def test_marker_must_match_the_file(tmp_path):
    write_shard(tmp_path, make_records(7))
    marker = read_marker(tmp_path, 0)
    marker_path(tmp_path, 0).write_text(json.dumps(marker | {"item_count": 8}))
    result = verify_shard(tmp_path, 0)
    assert result.problems == ["items: 7 records but the marker says 8"]
    # a rewritten shard replaces the marker: it never describes an older file
    write_shard(tmp_path, make_records(2))
    assert read_marker(tmp_path, 0)["item_count"] == 2 and verify_shard(tmp_path, 0).ok


def test_jsonl_log_drops_a_cut_line(tmp_path):
    from ldrt_hpc.shards import read_jsonl_log

    log = tmp_path / "progress.jsonl"
    assert read_jsonl_log(log) == []
    log.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": [1, 2')
    assert read_jsonl_log(log) == [{"a": 1}, {"b": 2}]
    assert log.read_bytes() == b'{"a": 1}\n{"b": 2}\n'  # the next append starts on a clean line
    log.write_bytes(b'{"a": 1}\n{"b": 2}')  # parses, but no newline: the writer did not finish
    assert read_jsonl_log(log) == [{"a": 1}] and log.read_bytes() == b'{"a": 1}\n'
