"""The pinned shard plan."""

from __future__ import annotations

import random

import pytest

from ldrt_hpc.plan import Plan, PlanError, assign, load_plan, pin_plan


def test_assignment_is_deterministic_balanced_and_order_free():
    keys = [f"/data/paper-{i}.pdf" for i in range(103)]
    first = assign(keys, 10)
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    assert assign(shuffled, 10) == first
    sizes = [len(s) for s in first]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 103
    assert sorted(k for s in first for k in s) == sorted(keys)


def test_pin_refuses_a_silent_change_of_shard_count(tmp_path):
    keys = [f"p{i}" for i in range(20)]
    pinned = pin_plan(tmp_path, Plan("ingest", 4, (), assign(keys, 4)))
    assert load_plan(tmp_path) == pinned
    # same count: the pinned plan wins, even if the inputs changed since
    again = pin_plan(tmp_path, Plan("ingest", 4, (), assign(keys + ["new"], 4)))
    assert again == pinned
    with pytest.raises(PlanError, match=r"pinned at 4 shards .* 6 were asked for.*--replan"):
        pin_plan(tmp_path, Plan("ingest", 6, (), assign(keys, 6)))
    assert load_plan(tmp_path) == pinned


def test_replan_moves_old_state_aside(tmp_path):
    pin_plan(tmp_path, Plan("ingest", 2, (), assign(["a", "b"], 2)))
    (tmp_path / "shard-00000.h5").write_bytes(b"old shard")
    new = pin_plan(tmp_path, Plan("ingest", 3, (), assign(["a", "b", "c"], 3)), replan=True)
    assert load_plan(tmp_path) == new and not (tmp_path / "shard-00000.h5").exists()
    moved = list((tmp_path / "_replaced").glob("*/shard-00000.h5"))
    assert len(moved) == 1 and moved[0].read_bytes() == b"old shard"


def test_unreadable_plan_is_a_clear_error(tmp_path):
    (tmp_path / "plan.json").write_text("{not json")
    with pytest.raises(PlanError, match="plan.json: unreadable plan"):
        load_plan(tmp_path)


def test_downstream_plan_goes_stale_when_upstream_is_replanned(tmp_path):
    from ldrt_hpc.plan import check_upstream, downstream_plan

    up, down = tmp_path / "ingest", tmp_path / "convert"
    pin_plan(up, Plan("ingest", 2, (), assign(["a", "b"], 2)))
    planned = pin_plan(down, downstream_plan("convert", ("ingest",), tmp_path, None))
    assert planned.num_shards == 2 and planned.upstream_fingerprint
    check_upstream(down, load_plan(down), tmp_path)  # unchanged: fine
    pin_plan(up, Plan("ingest", 4, (), assign(["a", "b", "c"], 4)), replan=True)
    with pytest.raises(PlanError, match=r"planned against an earlier state of ingest.*--replan"):
        check_upstream(down, load_plan(down), tmp_path)
    with pytest.raises(PlanError, match="it has 4 shards, not 2"):
        downstream_plan("convert", ("ingest",), tmp_path, 2)


def test_a_plan_built_from_another_stage_goes_stale_when_that_stage_changes(tmp_path):
    """`download` plans from the papers `search` found: a search that ran again (new markers) or was re-planned
    makes the download plan stale, although download does not read search shard by shard."""
    import json

    from ldrt_hpc.plan import check_upstream, upstream_fingerprint

    search = tmp_path / "search"
    pin_plan(search, Plan("search", 1, (), (("kw1",),)))
    (search / "shard-00000.done.json").write_text(json.dumps({"sha256": "aaa"}))
    wanted = Plan("download", 2, (), (("p1",), ("p2",)), planned_from=("search",),
                  upstream_fingerprint=upstream_fingerprint(tmp_path, (), ("search",)))
    pin_plan(tmp_path / "download", wanted)
    check_upstream(tmp_path / "download", load_plan(tmp_path / "download"), tmp_path)
    (search / "shard-00000.done.json").write_text(json.dumps({"sha256": "bbb"}))  # search ran again
    with pytest.raises(PlanError, match="planned against an earlier state of search"):
        check_upstream(tmp_path / "download", load_plan(tmp_path / "download"), tmp_path)
