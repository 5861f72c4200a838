"""Writes rows.parquet from rows.jsonl, as Hugging Face exports daVinci-Dev-style data
(pyarrow, snappy). Run: python make_parquet.py (needs pyarrow)."""

import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

here = pathlib.Path(__file__).parent
comment = pa.struct([("author", pa.string()), ("body", pa.string())])
schema = pa.schema([
    ("repo_name", pa.string()),
    ("repo_description", pa.string()),
    ("pr_number", pa.int64()),
    ("title", pa.string()),
    ("body", pa.string()),
    ("pr_summary", pa.string()),
    ("related_issue", pa.struct([("title", pa.string()), ("body", pa.string()), ("comments", pa.list_(comment))])),
    ("relevant_files", pa.list_(pa.struct([("path", pa.string()), ("content", pa.string())]))),
    ("commits", pa.list_(pa.struct([
        ("message", pa.string()),
        ("refined_message", pa.string()),
        ("diffs", pa.list_(pa.struct([("path", pa.string()), ("patch", pa.string())]))),
    ]))),
    ("merged", pa.bool_()),
    ("author", pa.string()),
    ("labels", pa.list_(pa.string())),
    ("comments", pa.list_(pa.struct([("author", pa.string()), ("body", pa.string()), ("created_at", pa.string())]))),
    ("reviews", pa.list_(pa.struct([
        ("author", pa.string()),
        ("state", pa.string()),
        ("body", pa.string()),
        ("created_at", pa.string()),
        ("comments", pa.list_(pa.struct([("path", pa.string()), ("diff_hunk", pa.string()), ("body", pa.string())]))),
    ]))),
])
rows = [json.loads(line) for line in (here / "rows.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
table = pa.Table.from_pylist(rows, schema=schema)
pq.write_table(table, here / "rows.parquet", compression="snappy")
