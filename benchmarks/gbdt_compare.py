"""Focal-loss boosting (focalkit.gbdt) against the alternatives, on three imbalanced data sets.

Per engine, on the same splits, from the same prior init score, with the same rounds and parameters:

* LightGBM: ``logloss`` (the built-in ``binary`` objective), ``balanced logloss`` (the same with
  class-balanced sample weights), focalkit's focal loss at gamma 0.5, 1, 2, 5 (default Hessian);
* XGBoost: ``logloss``, ``balanced logloss``, focalkit's focal loss at gamma 2, and the
  formulation of imbalance-xgboost (Wang et al. 2020; focal mode, gamma 2, no alpha): its published
  gradient and **exact Hessian passed to XGBoost unclipped**, re-implemented below from its formula
  (the package itself is not installed);
* CatBoost: ``Logloss``, ``balanced Logloss``, focalkit's focal loss at gamma 2 with alpha 0.5, and
  CatBoost's built-in ``Focal:focal_alpha=0.5;focal_gamma=2`` (the same loss).

The two outside formulations run twice: from the prior like every other method (so that only the
objective differs), and from the start their users get ("own start": XGBoost's ``base_score`` 0.5
read as a margin for a custom objective; CatBoost's 0 for ``Focal``).

Held-out metrics are those of ``focalkit compare`` (AP, best-threshold F1, balanced accuracy, ECE,
Brier, on the rare class) over seeds (stratified 70/30 splits), summarized and judged with its
functions (``summarize``, ``verdicts``, ``headline``: a method wins a metric only if its mean +- sd
interval does not overlap the runner-up's). A run counts as diverged when its held-out predictions
hold NaN or its own training objective ended above where it started, and as stalled when that
objective fell by less than 1 %.

    python benchmarks/gbdt_compare.py              # 8 seeds, 200 rounds (about 40 min on a busy 2-core machine)
    python benchmarks/gbdt_compare.py --quick      # 2 seeds, 30 rounds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gbdt_data  # noqa: E402

from focalkit.gbdt import DEFAULT_HESSIAN, FocalObjective, binary_focal_grad_hess, to_probabilities  # noqa: E402
from focalkit.gbdt import _engines as E  # noqa: E402
from focalkit.tools.experiments.compare import headline, summarize, verdicts  # noqa: E402
from focalkit.tools.experiments.metrics import METRICS, evaluate  # noqa: E402
from focalkit.tools.experiments.train import LossSpec  # noqa: E402


def imbalance_xgboost_focal(gamma: float):
    """The focal-mode objective of imbalance-xgboost (``Focal_Binary_Loss``), from its published formula.

    With p = sigmoid(margin), y in {0, 1}, s = (-1)^y, q = y + s p (= 1 - p_t), u = p + y - 1 and
    r = 1 - y - s p (= p_t):

        grad = gamma u q^gamma log(r + 1e-9) + s q^(gamma + 1)
        hess = p (1 - p) [gamma ((q^gamma + gamma s u q^(gamma-1)) log(r + 1e-9) - s u q^gamma / r)
                          + (gamma + 1) q^gamma]

    i.e. the exact derivatives of -(1 - p_t)^gamma log(p_t) (no alpha), the Hessian handed to XGBoost
    as it is, negative values included. Written here in our own notation; not the package's code.
    """

    def objective(preds, dtrain):
        y = dtrain.get_label().astype(np.float64)
        x = np.asarray(preds, np.float64)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            p = 1.0 / (1.0 + np.exp(-x))
            s = 1.0 - 2.0 * y
            q = y + s * p
            u = p + y - 1.0
            r = 1.0 - y - s * p
            log_r = np.log(r + 1e-9)
            grad = gamma * u * q ** gamma * log_r + s * q ** (gamma + 1)
            hess = (gamma * ((q ** gamma + gamma * s * u * q ** (gamma - 1)) * log_r - s * u * q ** gamma / r)
                    + (gamma + 1) * q ** gamma) * p * (1 - p)
        return grad, hess

    return objective


def _check_imbalance_xgboost_formula():
    """Away from the 1e-9 in its log, the re-implemented formula is the exact focal gradient/Hessian."""

    class D:
        def __init__(self, y):
            self.y = y

        def get_label(self):
            return self.y

    x = np.linspace(-8, 8, 161)
    for y in (np.zeros_like(x), np.ones_like(x)):
        g, h = imbalance_xgboost_focal(2.0)(x, D(y))
        g0, h0 = binary_focal_grad_hess(x, y, gamma=2.0, hessian="exact")
        assert np.allclose(g, g0, rtol=1e-5, atol=1e-7) and np.allclose(h, h0, rtol=1e-5, atol=1e-7)


def methods(engine: str, gammas):
    """(name, kind, loss spec for the verdict rule, how to train) per method of an engine."""
    out = [("logloss", "builtin", LossSpec("ce", name="logloss"), {}),
           ("balanced logloss", "balanced", LossSpec("balanced_ce", name="balanced logloss"), {})]
    if engine == "lightgbm":
        for g in gammas:
            out.append((f"focal γ={g:g}", "focal", LossSpec("focal", gamma=g, name=f"focal γ={g:g}"),
                        {"gamma": g, "alpha": None}))
    elif engine == "xgboost":
        out.append(("focal γ=2", "focal", LossSpec("focal", gamma=2.0, name="focal γ=2"), {"gamma": 2.0, "alpha": None}))
        out.append(("imbalance-xgboost γ=2", "imbalance_xgboost",
                    LossSpec("focal", gamma=2.0, name="imbalance-xgboost γ=2"), {"gamma": 2.0}))
        out.append(("imbalance-xgboost γ=2, own start", "imbalance_xgboost",
                    LossSpec("focal", gamma=2.0, name="imbalance-xgboost γ=2, own start"),
                    {"gamma": 2.0, "own_start": True}))
    else:
        out.append(("focal γ=2 α=0.5", "focal", LossSpec("focal", gamma=2.0, alpha=0.5, name="focal γ=2 α=0.5"),
                    {"gamma": 2.0, "alpha": 0.5}))
        out.append(("CatBoost Focal γ=2 α=0.5", "catboost_focal",
                    LossSpec("focal", gamma=2.0, alpha=0.5, name="CatBoost Focal γ=2 α=0.5"),
                    {"gamma": 2.0, "alpha": 0.5}))
        out.append(("CatBoost Focal γ=2 α=0.5, own start", "catboost_focal",
                    LossSpec("focal", gamma=2.0, alpha=0.5, name="CatBoost Focal γ=2 α=0.5, own start"),
                    {"gamma": 2.0, "alpha": 0.5, "own_start": True}))
    return out


def train_one(engine, kind, cfg, X, y, tr, te, rounds, lr, seed, n_jobs):
    """Train one method; returns (held-out margins, the method's own objective at start and end, seconds)."""
    prior = FocalObjective.init_score(y[tr])[0]
    init_tr, init_te = np.full(len(tr), prior), np.full(len(te), prior)
    own_start = cfg.get("own_start", False)
    w = None
    if kind == "balanced":
        counts = np.bincount(y[tr], minlength=2)
        w = (len(tr) / (2.0 * counts))[y[tr]]
    focal = FocalObjective(cfg["gamma"], alpha=cfg.get("alpha")) if kind == "focal" else None
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind in ("builtin", "balanced", "focal"):
            t = E.train(engine, E.Part(X[tr], y[tr], w, init_tr), num_class=2, focal=focal, n_estimators=rounds,
                        learning_rate=lr, random_state=seed, n_jobs=n_jobs, params={})
            raw_tr, raw_te = E.raw_margin(t, X[tr]), E.raw_margin(t, X[te])
        elif kind == "imbalance_xgboost":
            import xgboost as xgb

            if own_start:  # XGBoost's base_score, read as a margin by a custom objective
                b = xgb.train({"eta": lr, "seed": seed, "nthread": n_jobs, "disable_default_eval_metric": 1},
                              xgb.DMatrix(X[tr], y[tr]), rounds, obj=imbalance_xgboost_focal(cfg["gamma"]))
                base = float(json.loads(b.save_config())["learner"]["learner_model_param"]["base_score"].strip("[]"))
                init_tr, init_te = np.full(len(tr), base), np.full(len(te), base)
            else:
                b = xgb.train({"eta": lr, "seed": seed, "nthread": n_jobs, "disable_default_eval_metric": 1},
                              xgb.DMatrix(X[tr], y[tr], base_margin=init_tr), rounds,
                              obj=imbalance_xgboost_focal(cfg["gamma"]))
            raw_tr = b.predict(xgb.DMatrix(X[tr], base_margin=np.zeros(len(tr))), output_margin=True)
            raw_te = b.predict(xgb.DMatrix(X[te], base_margin=np.zeros(len(te))), output_margin=True)
        else:  # CatBoost's built-in Focal
            from catboost import CatBoostClassifier, Pool

            m = CatBoostClassifier(loss_function=f"Focal:focal_alpha={cfg['alpha']};focal_gamma={cfg['gamma']}",
                                   iterations=rounds, learning_rate=lr, random_seed=seed, thread_count=n_jobs,
                                   verbose=False, allow_writing_files=False)
            if own_start:  # CatBoost's Focal starts from 0 (no boost_from_average)
                init_tr, init_te = np.zeros(len(tr)), np.zeros(len(te))
                m.fit(Pool(X[tr], y[tr]))
            else:
                m.fit(Pool(X[tr], y[tr], baseline=init_tr))
            raw_tr = m.predict(X[tr], prediction_type="RawFormulaVal")
            raw_te = m.predict(X[te], prediction_type="RawFormulaVal")
    seconds = time.perf_counter() - t0
    own = FocalObjective(cfg.get("gamma", 0.0), alpha=cfg.get("alpha"))
    start = own.loss(init_tr, y[tr], w)
    m_tr = np.asarray(raw_tr, np.float64) + init_tr
    end = own.loss(m_tr, y[tr], w) if np.isfinite(m_tr).all() else float("nan")
    return np.asarray(raw_te, np.float64) + init_te, start, end, seconds


def run(args):
    _check_imbalance_xgboost_formula()
    engines = args.engines.split(",")
    gammas = [float(g) for g in args.gammas.split(",")]
    out = {"tool": "benchmarks/gbdt_compare.py", "command": " ".join(sys.argv),
           "config": {"seeds": args.seeds, "rounds": args.rounds, "learning_rate": args.lr, "engines": engines,
                      "gammas": gammas, "default_hessian": DEFAULT_HESSIAN, "test_fraction": 0.3,
                      "init": "prior log-odds of the training labels, for every method but the \"own start\" runs"},
           "datasets": {}}
    t_start = time.perf_counter()
    for name, build in gbdt_data.BINARY.items():
        X, y, desc = build()
        ds = {"description": desc, "n": len(y), "positives": int(y.sum()), "engines": {}}
        for engine in engines:
            ms = methods(engine, gammas)
            runs, health = [], {m[0]: {"nan": 0, "diverged": 0, "stalled": 0} for m in ms}
            for seed in range(args.seeds):
                tr, te = gbdt_data.split(y, seed)
                for mname, kind, _spec, cfg in ms:
                    margin, start, end, secs = train_one(engine, kind, cfg, X, y, tr, te, args.rounds, args.lr,
                                                         seed, args.n_jobs)
                    r = {"loss": mname, "seed": seed, "train_time": secs, "objective_start": start,
                         "objective_end": end}
                    if not np.isfinite(margin).all():
                        health[mname]["nan"] += 1
                        health[mname]["diverged"] += 1
                        r.update({m: None for m in METRICS if m != "train_time"})
                    else:
                        if not end <= start:
                            health[mname]["diverged"] += 1
                        elif end > 0.99 * start:
                            health[mname]["stalled"] += 1
                        met = evaluate("binary", to_probabilities(margin)[:, 1], y[te], num_classes=2,
                                       rare_classes=[1], curves=False)
                        r.update({m: met[m] for m in ("ap", "f1", "balanced_accuracy", "ece", "brier")})
                    runs.append(r)
                print(f"{name} {engine} seed {seed}: {time.perf_counter() - t_start:.0f}s", flush=True)
            names = [m[0] for m in ms]
            summary = summarize(runs, names)
            ds["engines"][engine] = {
                "summary": summary, "verdicts": verdicts(summary, args.seeds),
                "headline": headline(summary, [m[2] for m in ms], args.seeds), "health": health, "runs": runs,
            }
        out["datasets"][name] = ds
    out["elapsed"] = time.perf_counter() - t_start
    out["environment"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "load_average": list(os.getloadavg())}
    for lib in ("lightgbm", "xgboost", "catboost", "numpy", "sklearn"):
        out["environment"][lib] = __import__(lib).__version__
    return out


def _clean(x):
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def markdown(result) -> str:
    cfg = result["config"]
    lines = [f"Held-out metrics, mean ± sd over {cfg['seeds']} seeds (stratified 70/30 splits), {cfg['rounds']} "
             f"rounds, learning rate {cfg['learning_rate']}, engine defaults otherwise; every method starts from the "
             "prior log-odds (but the \"own start\" runs). **Bold**: best mean; ✓: clearly best (its mean ± sd interval overlaps no other's, "
             "the rule of `focalkit compare`). Diverged: runs with NaN predictions or whose own training "
             "objective ended above its start; stalled: it fell by less than 1 %. "
             "\"own start\": the method's usual starting score instead of the prior (see the script).", ""]
    for name, ds in result["datasets"].items():
        lines.append(f"### {name}: {ds['description']}")
        lines.append("")
        lines.append("| engine | method | AP ↑ | ECE ↓ | Brier ↓ | F1 ↑ | diverged / stalled / NaN |")
        lines.append("|---|---|---:|---:|---:|---:|---:|")
        for engine, e in ds["engines"].items():
            for mname, s in e["summary"].items():
                cells = []
                for m in ("ap", "ece", "brier", "f1"):
                    v = s[m]
                    txt = f"{v['mean']:.3f} ± {v['std']:.3f}" if m != "ece" else f"{v['mean']:.4f} ± {v['std']:.4f}"
                    if e["verdicts"][m]["best"] == mname:
                        txt = f"**{txt}**" + (" ✓" if e["verdicts"][m]["clear"] else "")
                    cells.append(txt)
                h = e["health"][mname]
                lines.append(f"| {engine} | {mname} | " + " | ".join(cells)
                             + f" | {h['diverged']} / {h['stalled']} / {h['nan']} |")
        lines.append("")
        for engine, e in ds["engines"].items():
            lines.append(f"* {engine}: {e['headline']}")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--gammas", default="0.5,1,2,5")
    ap.add_argument("--engines", default="lightgbm,xgboost,catboost")
    ap.add_argument("--n-jobs", type=int, default=1)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--json", default=os.path.join(here, "results-gbdt-compare.json"))
    ap.add_argument("--markdown", default=os.path.join(here, "results-gbdt-compare.md"))
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.rounds = 2, 30
    result = _clean(run(args))
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    md = markdown(result)
    with open(args.markdown, "w", encoding="utf-8") as fh:
        fh.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
