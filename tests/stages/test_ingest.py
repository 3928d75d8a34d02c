"""`ingest`: every PDF is checked and recorded; bad files get a reason and never stop the shard."""

from __future__ import annotations

import csv

import pymupdf
import pytest

from ldrt_hpc.config import IngestConfig
from ldrt_hpc.stages.ingest import check_pdf, list_inputs, paper_id_for


def cfg(**kw) -> IngestConfig:
    return IngestConfig(input_dir="/unused", **kw)


@pytest.fixture
def bad_pdfs(tmp_path, synth_pdfs):
    good = sorted(synth_pdfs.glob("*.pdf"))[0].read_bytes()
    files = {}
    files["empty"] = tmp_path / "empty.pdf"
    files["empty"].write_bytes(b"")
    files["text"] = tmp_path / "text.pdf"
    files["text"].write_text("<html><body>Access denied</body></html>\n" * 10)
    files["truncated"] = tmp_path / "truncated.pdf"
    files["truncated"].write_bytes(good[: len(good) // 3])
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    files["encrypted"] = tmp_path / "encrypted.pdf"
    doc.save(files["encrypted"], encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    files["good"] = tmp_path / "good.pdf"
    files["good"].write_bytes(good)
    return files


def test_good_pdf(bad_pdfs):
    record = check_pdf(str(bad_pdfs["good"]), cfg())
    assert record["ok"] and record["problems"] == "" and record["pages"] >= 1
    assert len(record["sha256"]) == 64 and record["bytes"] == bad_pdfs["good"].stat().st_size
    assert record["paper_id"] == "good"


@pytest.mark.parametrize("name, reason", [
    ("empty", "too small: 0 bytes"),
    ("text", "not a PDF: no %PDF- header (starts with '<html><body>Acce')"),
    ("truncated", "truncated: no %%EOF marker"),
    ("encrypted", "encrypted: needs a password"),
])
def test_bad_files_get_a_reason(bad_pdfs, name, reason):
    record = check_pdf(str(bad_pdfs[name]), cfg())
    assert not record["ok"]
    assert reason in record["problems"]


def test_limits(bad_pdfs, tmp_path):
    record = check_pdf(str(bad_pdfs["good"]), cfg(max_pages=0 + 1, max_bytes=10))
    assert not record["ok"] and record["problems"].startswith("too large")
    doc = pymupdf.open()
    for _ in range(5):
        doc.new_page()
    many = tmp_path / "many.pdf"
    doc.save(many)
    record = check_pdf(str(many), cfg(max_pages=3))
    assert record["problems"] == "too many pages: 5 > max_pages 3" and record["pages"] == 5
    assert check_pdf(str(tmp_path / "gone.pdf"), cfg())["problems"].startswith("cannot read file")


def test_list_inputs_folder_and_manifest(tmp_path, synth_pdfs):
    from_dir = list_inputs(IngestConfig(input_dir=synth_pdfs))
    assert len(from_dir) == 12 and all(p.endswith(".pdf") for p in from_dir)
    manifest = tmp_path / "list.txt"
    manifest.write_text("# papers\n" + "\n".join(from_dir[:3]) + "\n\n")
    assert list_inputs(IngestConfig(manifest=manifest)) == from_dir[:3]
    with pytest.raises(FileNotFoundError, match="input_dir: .* is not a folder"):
        list_inputs(IngestConfig(input_dir=tmp_path / "nope"))


def test_paper_ids_are_safe():
    assert paper_id_for("/x/10.1000/abc def.pdf") == "abc_def"
    assert paper_id_for("/x/../..pdf") == "paper"


@pytest.mark.shared
def test_real_papers(shared_dir):
    rows = list(csv.DictReader(open(shared_dir / "corpus" / "manifest.csv")))
    assert len(rows) >= 10
    for row in rows:
        record = check_pdf(str(shared_dir / "corpus" / "pdfs" / row["file"]), cfg())
        assert record["ok"], (row["file"], record["problems"])
        assert record["pages"] == int(row["pages"]), row["file"]
