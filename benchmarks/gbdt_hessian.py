"""Which Hessian should focal-loss boosting use? A measurement over data sets, engines, gammas, seeds.

For every data set (gbdt_data.py), engine, gamma and seed, the same split and the same prior init
score, one model per ``hessian=`` choice (focalkit.gbdt.HESSIANS) is trained for a fixed number of
rounds. Recorded per run:

* convergence: the training focal loss at rounds 0, 5, 10, 25, 50, 100 (round 0 = the prior),
  the final / initial ratio, whether the loss ever rose between checkpoints, whether it ended above
  its start (diverged) or fell by less than 1 % (stalled), NaN;
* held-out: average precision (rare classes, macro) and expected calibration error (focalkit
  compare's metrics).

Summary per Hessian: mean held-out AP and ECE, the mean rank of AP and of the final training loss
within each (data set, engine, gamma, seed) group (1 = best of the four), and the counts of
diverged / stalled / non-monotone / NaN runs.

    python benchmarks/gbdt_hessian.py            # 3 seeds, 100 rounds (about 30 min on a busy 2-core machine)
    python benchmarks/gbdt_hessian.py --quick    # 1 seed, 30 rounds, LightGBM only

CatBoost runs the binary sets only (its multi-class custom objective is called from Python per row).
Engines run single-threaded: on a shared machine OpenMP threads that wait for each other made
LightGBM and XGBoost 20x slower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gbdt_data  # noqa: E402

from focalkit.gbdt import HESSIANS, FocalObjective  # noqa: E402
from focalkit.gbdt import _engines as E  # noqa: E402
from focalkit.tools.experiments.metrics import evaluate  # noqa: E402

CHECKPOINTS = (0, 5, 10, 25, 50, 100, 200, 400)
GAMMAS = (0.5, 1.0, 2.0, 5.0)
ENGINE_PARAMS = {"lightgbm": {}, "xgboost": {}, "catboost": {}}


def run_one(X, y, num_class, tr, te, engine, gamma, hessian, rounds, lr, seed, n_jobs):
    focal = FocalObjective(gamma=gamma, hessian=hessian)
    k = None if num_class == 2 else num_class
    prior = focal.init_score(y[tr], num_class=k)
    rows = lambda n: np.full(n, prior[0]) if k is None else np.tile(prior, (n, 1))  # noqa: E731
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = E.train(engine, E.Part(X[tr], y[tr], None, rows(len(tr))), num_class=num_class, focal=focal,
                    n_estimators=rounds, learning_rate=lr, random_state=seed, n_jobs=n_jobs,
                    params=ENGINE_PARAMS[engine])
    elapsed = time.perf_counter() - t0
    curve = []
    for c in (c for c in CHECKPOINTS if c <= rounds):
        m = rows(len(tr)) + (E.raw_margin(t, X[tr], n_trees=c) if c else 0.0)
        curve.append(focal.loss(m, y[tr]) if np.isfinite(m).all() else float("nan"))
    margin = E.raw_margin(t, X[te]) + rows(len(te))
    nan = not np.isfinite(margin).all()
    out = {"loss_curve": curve, "nan": nan, "seconds": elapsed}
    c = np.asarray(curve)
    out["final_ratio"] = float(c[-1] / c[0]) if np.isfinite(c).all() else float("nan")
    out["diverged"] = bool(nan or not np.isfinite(c).all() or c[-1] > c[0])
    out["non_monotone"] = bool(np.isfinite(c).all() and (np.diff(c) > 1e-12 * c[0]).any())
    if nan:
        out.update(ap=float("nan"), ece=float("nan"))
        return out
    from focalkit.gbdt import to_probabilities

    proba = to_probabilities(margin)
    task = "binary" if num_class == 2 else "multiclass"
    met = evaluate(task, proba[:, 1] if num_class == 2 else proba, y[te], num_classes=num_class,
                   rare_classes=[1] if num_class == 2 else list(range(1, num_class)), curves=False)
    out.update(ap=met["ap"], ece=met["ece"])
    return out


def _ranks(values, higher_better):
    v = np.asarray(values, np.float64)
    v = np.where(np.isfinite(v), v, -np.inf if higher_better else np.inf)
    order = (-v if higher_better else v).argsort(kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(1, len(v) + 1)
    return r


def _stalled(run) -> bool:
    """The training loss fell by less than 1 % (and did not rise): the model barely moved."""
    c = run["loss_curve"]
    return c[-1] is not None and c[0] is not None and 0.99 * c[0] < c[-1] <= c[0]


def summarize(runs):
    """Per Hessian: means, mean ranks within groups, counts; also per gamma."""
    groups = {}
    for r in runs:
        groups.setdefault((r["data"], r["engine"], r["gamma"], r["seed"]), []).append(r)
    for g in groups.values():
        for key, hb in (("ap", True), ("final_ratio", False), ("ece", False)):
            for r, rk in zip(g, _ranks([x[key] for x in g], hb)):
                r[f"rank_{key}"] = float(rk)

    def stats(sel):
        out = {}
        for h in HESSIANS:
            mine = [r for r in sel if r["hessian"] == h]
            out[h] = {
                "runs": len(mine),
                "ap": float(np.nanmean([r["ap"] for r in mine])),
                "ece": float(np.nanmean([r["ece"] for r in mine])),
                "rank_ap": float(np.mean([r["rank_ap"] for r in mine])),
                "rank_ece": float(np.mean([r["rank_ece"] for r in mine])),
                "rank_loss": float(np.mean([r["rank_final_ratio"] for r in mine])),
                "diverged": int(sum(r["diverged"] for r in mine)),
                "stalled": int(sum(_stalled(r) for r in mine)),
                "non_monotone": int(sum(r["non_monotone"] for r in mine)),
                "nan": int(sum(r["nan"] for r in mine)),
            }
        return out

    result = {"all": stats(runs)}
    for gamma in sorted({r["gamma"] for r in runs}):
        result[f"gamma={gamma:g}"] = stats([r for r in runs if r["gamma"] == gamma])
    for engine in sorted({r["engine"] for r in runs}):
        result[f"engine={engine}"] = stats([r for r in runs if r["engine"] == engine])
    for data in sorted({r["data"] for r in runs}):
        result[f"data={data}"] = stats([r for r in runs if r["data"] == data])
    return result


def markdown(summary):
    lines = ["| subset | Hessian | runs | AP | ECE | rank AP | rank ECE | rank train loss | diverged | stalled | "
             "non-monotone | NaN |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for subset, per in summary.items():
        for h, s in per.items():
            lines.append(f"| {subset} | {h} | {s['runs']} | {s['ap']:.3f} | {s['ece']:.4f} | {s['rank_ap']:.2f} | "
                         f"{s['rank_ece']:.2f} | {s['rank_loss']:.2f} | {s['diverged']} | {s['stalled']} | {s['non_monotone']} | "
                         f"{s['nan']} |")
    return "\n".join(lines)


def _clean(x):
    """JSON-safe: NaN -> None, NumPy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--engines", default="lightgbm,xgboost,catboost")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results-gbdt-hessian.json"))
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--summarize", metavar="JSON", default=None,
                    help="recompute the summary and table of an earlier run's JSON (no training)")
    args = ap.parse_args(argv)
    if args.summarize:
        with open(args.summarize, encoding="utf-8") as fh:
            result = json.load(fh)
        result["summary"] = summarize(result["runs"])
        with open(args.summarize, "w", encoding="utf-8") as fh:
            json.dump(_clean(result), fh, indent=1)
            fh.write("\n")
        md = markdown(result["summary"])
        if args.markdown:
            with open(args.markdown, "w", encoding="utf-8") as fh:
                fh.write(md + "\n")
        print(md)
        return
    if args.quick:
        args.seeds, args.rounds, args.engines = 1, 30, "lightgbm"
    engines = args.engines.split(",")
    sets = {**{k: (f, 2) for k, f in gbdt_data.BINARY.items()}, **{k: (f, 4) for k, f in gbdt_data.MULTICLASS.items()}}
    runs, t0 = [], time.perf_counter()
    descriptions = {}
    for name, (build, k) in sets.items():
        X, y, desc = build()
        descriptions[name] = desc
        for engine in engines:
            if engine == "catboost" and k > 2:
                continue
            for seed in range(args.seeds):
                tr, te = gbdt_data.split(y, seed)
                for gamma in GAMMAS:
                    for h in HESSIANS:
                        r = run_one(X, y, k, tr, te, engine, gamma, h, args.rounds, args.lr, seed, args.n_jobs)
                        r.update(data=name, engine=engine, gamma=gamma, hessian=h, seed=seed)
                        runs.append(r)
                print(f"{name} {engine} seed {seed}: {time.perf_counter() - t0:.0f}s", flush=True)
    summary = summarize(runs)
    result = {
        "tool": "benchmarks/gbdt_hessian.py", "command": " ".join(sys.argv),
        "config": {"seeds": args.seeds, "rounds": args.rounds, "learning_rate": args.lr, "engines": engines,
                   "gammas": list(GAMMAS), "checkpoints": [c for c in CHECKPOINTS if c <= args.rounds],
                   "engine_params": ENGINE_PARAMS, "test_fraction": 0.3},
        "datasets": descriptions, "summary": summary, "runs": runs,
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "load_average": list(os.getloadavg())},
        "elapsed": time.perf_counter() - t0,
    }
    for lib in ("lightgbm", "xgboost", "catboost", "numpy", "sklearn"):
        try:
            result["environment"][lib] = __import__(lib).__version__
        except ImportError:
            pass
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(_clean(result), fh, indent=1)
        fh.write("\n")
    md = markdown(summary)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
