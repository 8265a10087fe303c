"""``python -m benchmarks [--quick] [--only NAME ...] [--networks …] [--batches …] [--sections …]
[--repeats N]``: run the measures, write results and report."""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import time
from pathlib import Path

from benchmarks import scale
from benchmarks.common import machine
from benchmarks.report import render

HERE = Path(__file__).resolve().parent
MEASURES = ("scale", "recompile", "startup", "sweeps")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, not for the record)")
    parser.add_argument("--only", nargs="+", choices=MEASURES, default=list(MEASURES))
    parser.add_argument("--networks", nargs="+", choices=scale.NETWORKS, default=list(scale.NETWORKS),
                        help="scale: the networks to measure (a partial run says so in its report)")
    parser.add_argument("--batches", nargs="+", type=int, choices=scale.BATCHES, default=list(scale.BATCHES),
                        help="scale: the batch sizes")
    parser.add_argument("--sections", nargs="+", choices=scale.SECTIONS, default=list(scale.SECTIONS),
                        help="scale: which of its measures to run")
    parser.add_argument("--repeats", type=int, help="scale: interleaved repeats of every variant (default 3)")
    args = parser.parse_args()
    options = {"scale": {"networks": args.networks, "batches": args.batches, "sections": args.sections,
                         "repeats": args.repeats}}
    results_path = HERE / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() and len(args.only) < len(MEASURES) else {}
    seconds = results.setdefault("measure_seconds", {})  # per measure: a partial run keeps the others'
    for name in args.only:
        print(f"benchmarks: {name} …", flush=True)
        start = time.perf_counter()
        previous = results.get(name)
        results[name] = importlib.import_module(f"benchmarks.{name}").measure(quick=args.quick,
                                                                              **options.get(name, {}))
        seconds[name] = time.perf_counter() - start
        if name == "scale" and previous is not None:  # a run of some sections keeps the others, labelled
            scale.carry_over(results[name], previous)
    if "scale" in results:  # the headline: lossexp / plain Keras with the same steps_per_execution
        results["same_batching_ratio"] = {key: ratio["of_fastest"]
                                          for key, ratio in results["scale"]["same_batching_ratio"].items()}
    results["machine"] = machine()
    results["date"] = datetime.date.today().isoformat()
    results["wall_seconds"] = sum(seconds.values())
    results["quick"] = args.quick
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "RESULTS.md").write_text(render(results) + "\n")
    print((HERE / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()
