"""Benchmark: load, seed, validate, smoke and sweep the 17 templates on SQLite.

Baseline (same run, same machine): raw sqlite3 inserting the same 17 JSON documents in
one transaction with the same pragmas. Prints milliseconds per phase and the ratio of
tcai's fresh seed to the baseline. Wall-clock figures drift on shared machines; compare
ratios. Usage: python bench/templates_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from sqlmodel import Session

from tcai.config import load_settings
from tcai.db.engine import make_engine
from tcai.db.migrate import upgrade
from tcai.quality.smoke import run_smoke
from tcai.quality.sweep import run_sweep
from tcai.templates.files import canonical_json, load_template_files
from tcai.templates.schema import Template
from tcai.templates.store import as_stored, seed_templates, stored_templates
from tcai.templates.validation import validate_stored


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def one_round(folder: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    t = time.perf_counter()
    templates = load_template_files()
    figures["load files"] = _ms(t)

    engine = make_engine(f"sqlite:///{folder / 'tcai.db'}")
    upgrade(engine)
    t = time.perf_counter()
    seed_templates(engine, templates)
    figures["seed (fresh)"] = _ms(t)
    t = time.perf_counter()
    seed_templates(engine, templates)
    figures["seed (unchanged)"] = _ms(t)
    t = time.perf_counter()
    with Session(engine) as session:
        rows = [as_stored(r) for r in stored_templates(session)]
    report = validate_stored(rows)
    figures["validate"] = _ms(t)
    assert report.ok and len(report.checked) == 17
    t = time.perf_counter()
    sweep = run_sweep([Template.model_validate(r.document) for r in rows])
    figures["sweep"] = _ms(t)
    assert sweep.ok
    t = time.perf_counter()
    smoke = asyncio.run(run_smoke(load_settings(Path("/nonexistent")), engine))
    figures["smoke"] = _ms(t)
    assert smoke.ok, [i for i in smoke.failed]
    engine.dispose()

    documents = [canonical_json(t.model_dump(mode="json")) for t in templates]
    conn = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
    t = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for template, document in zip(templates, documents, strict=True):
        conn.execute(
            "INSERT INTO t VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
            (template.id, document),
        )
    conn.execute("COMMIT")
    figures["baseline raw insert"] = _ms(t)
    conn.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(one_round(Path(tmp)))
    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    for name, value in medians.items():
        print(f"{name:<22} {value:8.2f} ms (median of {args.rounds})")
    ratio = medians["seed (fresh)"] / medians["baseline raw insert"]
    phases = ("load files", "seed (fresh)", "validate", "smoke", "sweep")
    total = sum(medians[p] for p in phases)
    print(f"seed (fresh) / baseline raw insert: {ratio:.1f}x")
    print(
        f"seed + validate + smoke + sweep: {total:.0f} ms = {total / 10_000:.0%} of the 10 s bar (README, Benchmarks)"
    )
    print(json.dumps({"medians_ms": medians, "ratio_seed_to_baseline": ratio}))


if __name__ == "__main__":
    main()
