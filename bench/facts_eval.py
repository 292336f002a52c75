"""Facts-mode evaluation: how well the engine answers visitors without an LLM.

Runs the labelled main set (tests/chat/facts_eval/cases.yaml) and the held-out set
(tests/chat/facts_eval/heldout.yaml, never tuned against) through `tcai.quality.facts_eval`, and
prints the score per set and per category, the ten hardest misses (message, expected,
got) and the answer time per message. docs/facts-mode.md explains the sets.
Usage: python bench/facts_eval.py [--misses N] [--set main|heldout]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from tcai.chat.facts import FactsBook
from tcai.quality.facts_eval import EvalReport, EvalSuite, ask, load_suite, make_config, run_suite

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "chat" / "facts_eval" / "cases.yaml"
HELDOUT = REPO / "tests" / "chat" / "facts_eval" / "heldout.yaml"


def _print_report(label: str, report: EvalReport, misses: int) -> None:
    passed = sum(r.passed for r in report.results)
    print(f"\n== {label}: {report.score:.1%} ({passed}/{len(report.results)})")
    for category, (ok, total) in report.by_category().items():
        print(f"   {category:<14} {ok:>3}/{total:<3} {ok / total:6.1%}")
    hardest = report.misses()[:misses]
    if hardest:
        print(f"   hardest misses ({len(hardest)} of {len(report.misses())}):")
    for result in hardest:
        case = result.case
        wanted = "; ".join(" | ".join(e) for e in case.expect) or "(nothing required)"
        print(f"   - [{case.category}] {case.template}/{case.variant}: {case.message!r}")
        print(f"     expected: {wanted}")
        print(f"     problems: {', '.join(result.problems)}")
        print(f"     got:      {result.reply[:240]}")


def _timing(suite: EvalSuite) -> tuple[float, float, float]:
    """(median build ms per FactsBook, median and p95 answer ms per message). Books are
    built first, as the pipeline builds one per bot config version; each message gets
    a unique trailing-space suffix so memoised normalisation cannot flatter the time."""
    books: dict[tuple[str, str], FactsBook] = {}
    builds = []
    for case in suite.cases:
        key = (case.template, case.variant)
        if key not in books:
            config = make_config(
                case.template, suite.names[case.template], suite.variants[case.variant]
            )
            start = time.perf_counter()
            books[key] = FactsBook(config)
            builds.append((time.perf_counter() - start) * 1000)
    samples = []
    for number, case in enumerate(suite.cases, 1):
        book = books[(case.template, case.variant)]
        message = case.message + " " * number
        start = time.perf_counter()
        ask(book, message, case.now)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[max(int(len(samples) * 0.95) - 1, 0)]
    return statistics.median(builds), statistics.median(samples), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", type=int, default=10, help="hardest misses to show")
    parser.add_argument("--set", choices=("main", "heldout"), help="run one set only")
    args = parser.parse_args()
    suites = []
    if args.set in (None, "main"):
        suites.append(("main set", load_suite(CASES)))
    if args.set in (None, "heldout"):
        suites.append(("held-out set", load_suite(HELDOUT, definitions=CASES)))
    for label, suite in suites:
        _print_report(label, run_suite(suite), args.misses)
    build, median, p95 = _timing(suites[0][1])
    print(
        f"\nFactsBook build: median {build:.1f} ms per bot config; answer per message "
        f"(with contact extraction and booking intent): median {median:.2f} ms, p95 {p95:.2f} ms"
    )


if __name__ == "__main__":
    main()
