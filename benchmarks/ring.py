"""The GAN on the 8-Gaussian ring, with and without historical averaging, over several seeds.

Both variants use ``experiment=gan_ring_hist_avg`` as shipped (same networks, data, optimizer,
batch size and number of steps); ``plain`` drops the loss components (``loss=none``),
``hist_avg`` keeps historical averaging on both players. Seed s sets the data draw, the
initial weights and the noise (``data.seed=s trainer.seed=s``); the variants are interleaved per
seed. After the last epoch the generator is scored on 2,500 samples with VEEGAN's definitions
(:mod:`lossexp.evaluation.ring`). Uses the product's own pieces (Hydra composition, validation,
``build_gan``, the ring callback) without MLflow, drift or plots, which do not change training.

Writes ``benchmarks/ring_results.json`` and ``benchmarks/RING.md`` and prints the table.

    python -m benchmarks.ring [--seeds 10] [--epochs E]   (E defaults to the experiment's)
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List

from benchmarks.common import lossexp_config, machine

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "ring_results.json"
TABLE = HERE / "RING.md"
EXPERIMENT = "gan_ring_hist_avg"
VARIANTS = {"plain": ["loss=[]"], "hist_avg": []}


def config(seed: int, variant: str, epochs: int | None) -> Any:
    overrides = [f"experiment={EXPERIMENT}", f"data.seed={seed}", f"trainer.seed={seed}", *VARIANTS[variant]]
    if epochs is not None:
        overrides.append(f"trainer.epochs={epochs}")
    return lossexp_config(*overrides)


def train_and_score(cfg: Any) -> Dict[str, Any]:
    import keras

    from lossexp.data import load
    from lossexp.data.ring import modes
    from lossexp.tracking.ring import RingMetrics
    from lossexp.training.gan_assemble import build_gan

    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.trainer.seed)
    data = load(cfg.data)
    model = build_gan(cfg, data)
    ring = RingMetrics(modes(cfg.data.radius), cfg.data.std, cfg.model.latent_dim, seed=cfg.trainer.seed)
    start = time.perf_counter()
    history = model.fit(data.x, epochs=cfg.trainer.epochs, batch_size=cfg.trainer.batch_size, callbacks=[ring],
                        verbose=0).history
    return {
        "modes_covered": history["ring/modes_covered"][-1],
        "high_quality": history["ring/high_quality"][-1],
        "modes_covered_by_epoch": history["ring/modes_covered"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def summary(values: List[float]) -> Dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    from lossexp.data.ring import N_MODES
    from lossexp.evaluation.ring import N_EVAL_SAMPLES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()

    wall = time.perf_counter()
    runs: Dict[str, List[Dict]] = {variant: [] for variant in VARIANTS}
    for seed in range(args.seeds):
        for variant in VARIANTS:
            cfg = config(seed, variant, args.epochs)
            result = train_and_score(cfg)
            runs[variant].append({"seed": seed, **result})
            print(f"seed {seed} {variant:<9} modes {result['modes_covered']:.0f}/{N_MODES}  "
                  f"high quality {result['high_quality']:5.1f}%  ({result['seconds']} s)", flush=True)
    cfg = config(0, "hist_avg", args.epochs)
    steps = cfg.trainer.epochs * (cfg.data.n_samples // cfg.trainer.batch_size)
    results = {
        "setup": {
            "experiment": EXPERIMENT, "seeds": args.seeds, "epochs": cfg.trainer.epochs, "steps_per_player": steps,
            "batch_size": cfg.trainer.batch_size, "n_samples": cfg.data.n_samples, "radius": cfg.data.radius,
            "std": cfg.data.std, "latent_dim": cfg.model.latent_dim, "generator_units": cfg.model.generator_units,
            "discriminator_units": cfg.model.discriminator_units, "optimizer": vars(cfg.optimizer),
            "hist_avg": {k: v for k, v in cfg.loss["hist_avg"].items()}, "eval_samples": N_EVAL_SAMPLES,
        },
        "variants": {
            variant: {
                "modes_covered": summary([r["modes_covered"] for r in rows]),
                "high_quality_percent": summary([r["high_quality"] for r in rows]),
                "runs": rows,
            }
            for variant, rows in runs.items()
        },
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "machine": {**machine(), "note": "2 cores shared with other jobs while measured"},
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    TABLE.write_text(markdown(results))
    print(markdown(results))


def markdown(results: Dict) -> str:
    setup = results["setup"]
    lines = [
        "# GAN on the 8-Gaussian ring: plain vs historical averaging",
        "",
        f"`python -m benchmarks.ring` — `experiment={setup['experiment']}`, {setup['seeds']} seeds, "
        f"{setup['steps_per_player']} steps per player (batch {setup['batch_size']}), scored on "
        f"{setup['eval_samples']} samples after the last epoch (VEEGAN: high quality = within 3 std of the "
        f"nearest mode; a mode is covered if a high-quality sample is nearest to it). Mean ± std over seeds.",
        "",
        "| variant | modes covered (of 8) | high-quality samples (%) | per seed: modes |",
        "|---|---|---|---|",
    ]
    for variant, row in results["variants"].items():
        modes_, hq = row["modes_covered"], row["high_quality_percent"]
        per_seed = ", ".join(f"{r['modes_covered']:.0f}" for r in row["runs"])
        lines.append(f"| {variant} | {modes_['mean']:.1f} ± {modes_['std']:.1f} | {hq['mean']:.1f} ± {hq['std']:.1f} "
                     f"| {per_seed} |")
    lines += ["", f"Wall time {results['wall_seconds']:.0f} s ({results['machine']['note']})."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
