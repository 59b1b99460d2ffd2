"""Run the pyservice benchmark suite.

    python bench/run.py            # the full run: writes docs/performance/ and the tables of docs/performance.md
    python bench/run.py --quick    # under a minute, for development: writes bench/results/quick/
    python bench/run.py --smoke    # every case once, for CI: writes bench/results/smoke/, asserts no timing

See bench/README.md for what each section measures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from suite import clients, inprocess, instructions, memory, report, scaling, served, service  # noqa: E402
from suite.modes import MODES  # noqa: E402
from suite.progress import Progress  # noqa: E402

SECTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "in-process": inprocess.run,
    "scaling": scaling.run,
    "memory": memory.run,
    "client": clients.run,
    "http": served.run,
    "service": service.run,
    "instructions": instructions.run,
}
DOCS_OUT = ROOT / "docs" / "performance"
PAGE = ROOT / "docs" / "performance.md"
MARKERS = ("<!-- results:start -->", "<!-- results:end -->")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="pyservice next to its peers and the limit, measured.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a shorter run, under a minute")
    size.add_argument("--smoke", action="store_true", help="every case once, to check the suite runs (CI)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument("--out", type=Path, help="where to write results (default: by mode, see above)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    return parser.parse_args(argv)


def update_page(markdown: str) -> None:
    """Put the tables between the page's markers, leaving the prose around them alone."""
    text = PAGE.read_text()
    start, end = MARKERS
    if start not in text or end not in text:
        raise SystemExit(f"{PAGE}: the markers {start} and {end} are missing")
    # The page has its own title and a "Results" section: the results' own
    # title goes, and their headings go one level down.
    body = markdown.split("\n", 1)[1]
    body = re.sub(r"^(#{2,4}) ", lambda m: "#" + m.group(1) + " ", body, flags=re.MULTILINE)
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    PAGE.write_text(f"{before}{start}\n{body.strip()}\n{end}{after}")


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    out: Path = args.out or (DOCS_OUT if mode.name == "full" else BENCH / "results" / mode.name)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    started = time.monotonic()
    results: dict[str, Any] = {"meta": report.header(mode.name, ["bench/run.py", *sys.argv[1:]])}
    for name, run in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        progress.step(name, "starting")
        results[name] = run(mode, progress)
    results["meta"]["seconds"] = time.monotonic() - started
    results["meta"]["load_average_at_end"] = list(os.getloadavg())
    results["meta"]["notes"] = progress.notes
    results["targets"] = report.targets(results)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    markdown = report.markdown(results)
    (out / "results.md").write_text(markdown)
    written = [] if args.no_plots else report.plots(results, out)
    if out.resolve() == DOCS_OUT.resolve() and not args.only:
        update_page(markdown)
    progress.step(
        "done", f"{results['meta']['seconds']:.0f} s; wrote {out}/results.json, results.md, {', '.join(written)}"
    )
    report.print_summary(results)
    if mode.name == "smoke":
        missing = [name for name in SECTIONS if (not args.only or name in args.only) and name not in results]
        if missing:
            print(f"smoke: sections without results: {missing}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
