"""The bench's outputs from its results: results.json, report.md and PNG plots (matplotlib)."""

from __future__ import annotations

import json
import os
import time

from mvae_jax.bench import attributes_eval, interpolation, reconstruction

PLOTS = {"reconstruction": "reconstruction.png", "interpolation": "interpolation.png",
         "attributes": "attributes.png"}


def _plt():
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  return plt


def _ci(d: dict, digits: int = 3) -> str:
  return f"{d['mean']:.{digits}f} [{d['lo']:.{digits}f}, {d['hi']:.{digits}f}]"


def paper_finding(configs: dict) -> list[str]:
  """The paper's 16-bar claims checked on these results, one line each with its numbers:
  a hierarchical decoder's sampled accuracy above the flat one's, and its teacher-forced minus
  sampled gap smaller. Each difference is paired over the same held-out windows, with its 95%
  interval; 'holds' needs the difference's sign, 'clearly' its whole interval."""
  flat = [k for k, v in configs.items() if v["decoder"] == "flat" and "reconstruction" in v]
  hier = [k for k, v in configs.items() if v["decoder"] != "flat" and "reconstruction" in v]
  lines = []
  for h in hier:
    for f in flat:
      rh, rf = configs[h]["reconstruction"], configs[f]["reconstruction"]
      for key, what, want in (("sampled", f"sampled accuracy, {h} above {f}", 1),
                              ("gap", f"teacher-forced minus sampled gap, {h} smaller than {f}",
                               -1)):
        d = reconstruction.paired_difference(rh, rf, key)
        holds = want * d["mean"] > 0
        clear = want * d["lo"] > 0 if want > 0 else want * d["hi"] > 0
        majority = rh["baselines"]["majority_class"]["overall"]
        if key == "gap" and rh["sampled_accuracy"]["mean"] <= majority + 1e-9:
          lines.append(f"- {what}: **not judged**: {h} decodes no better than the most frequent "
                       f"class ({rh['sampled_accuracy']['mean']:.3f} vs {majority:.3f}), so its "
                       f"gap of {rh['gap']['mean']:+.3f} says nothing")
          continue
        mine = rh["sampled_accuracy"] if key == "sampled" else rh["gap"]
        theirs = rf["sampled_accuracy"] if key == "sampled" else rf["gap"]
        verdict = ("holds, clearly" if clear else "holds, within noise") if holds else (
            "does not hold")
        lines.append(f"- {what}: **{verdict}** ({mine['mean']:.3f} vs {theirs['mean']:.3f}; "
                     f"paired difference {d['mean']:+.3f}, 95% interval [{d['lo']:+.3f}, "
                     f"{d['hi']:+.3f}] over {d['n']} windows)")
  return lines


def _reconstruction_md(configs: dict) -> list[str]:
  rows = ["| config | decoder | step | teacher-forced acc. | sampled acc. | gap (TF − sampled) | "
          "r_loss (nats) | KL (bits) | onset acc. TF / sampled |", "|---" * 9 + "|"]
  base = None
  for label, v in configs.items():
    r = v.get("reconstruction")
    if not r:
      continue
    base = r["baselines"]
    rows.append(f"| {label} ({v['config']}) | {v['decoder']} | {v['step']} | "
                f"{_ci(r['teacher_forced_accuracy'])} | {_ci(r['sampled_accuracy'])} | "
                f"{_ci(r['gap'])} | {r['r_loss']['mean']:.1f} | {r['kl_bits']['mean']:.1f} | "
                f"{r['teacher_forced_onset_accuracy']:.3f} / {r['sampled_onset_accuracy']:.3f} |")
  if base:
    rows.append(f"\nBaselines on the same windows: most frequent class {base['majority_class']['overall']:.3f} "
                f"(onsets {base['majority_class']['onset']:.3f}); repeat the previous token "
                f"{base['repeat_previous']['overall']:.3f} (onsets {base['repeat_previous']['onset']:.3f}).")
  return rows


def _interpolation_md(results: dict) -> list[str]:
  alphas = results["alphas"]
  pick = sorted({0, len(alphas) // 2, len(alphas) - 1})
  head = ", ".join(f"α={alphas[i]:.1f}" for i in pick)
  rows = [f"| interpolation | Hamming to A: {head} | normalised LM cost: {head} | SPEC (C_α−C_A)/(C_B−C_A), median: {head} |",
          "|---|---|---|---|"]
  series = {f"latent, {k}": v["interpolation"] for k, v in results["configs"].items()
            if "interpolation" in v}
  if "data_interpolation" in results:
    series["data space"] = results["data_interpolation"]
  for name, d in series.items():
    h = ", ".join(f"{d['hamming_to_a'][i]:.3f}" for i in pick)
    c = ", ".join(f"{d['normalised_cost']['mean_over_endpoints'][i]:.3f}" for i in pick)
    sp = ", ".join(f"{d['normalised_cost']['spec_median'][i]:.2f}" for i in pick)
    rows.append(f"| {name} | {h} | {c} | {sp} |")
  if "data_interpolation" in results:
    d = results["data_interpolation"]
    rows.append(f"\nHamming distance A–B: {d['hamming_a_b']:.3f}; LM cost of the true endpoints: "
                f"{d['lm_cost_endpoints_bits'][0]:.3f} / {d['lm_cost_endpoints_bits'][1]:.3f} bits "
                "per step.")
  return rows


def _throughput_md(configs: dict) -> list[str]:
  rows = ["| config | device | batch | steps/s | examples/s | compile (s) | GFLOP/step (matmul, fwd+bwd) | "
          "achieved GFLOP/s | matmul rate GFLOP/s | % of it | XLA cost analysis GFLOP/step (scan bodies once) | peak memory |",
          "|---" * 12 + "|"]
  for label, v in configs.items():
    t = v.get("throughput")
    if not t:
      continue
    rows.append(f"| {label} | {t['device']} | {t['batch_size']} | {t['steps_per_sec']:.2f} | "
                f"{t['examples_per_sec']:.0f} | {t['compile_s']:.1f} | {t['flops_per_step'] / 1e9:.2f} | "
                f"{t['achieved_flops_per_sec'] / 1e9:.1f} | {t['matmul_rate_flops_per_sec'] / 1e9:.1f} | "
                f"{100 * t['fraction_of_matmul_rate']:.0f}% | {t['xla_cost_analysis_flops'] / 1e9:.2f} | "
                f"{t['peak_memory_bytes'] / 2**20:.0f} MiB ({t['peak_memory_kind']}) |")
  return rows


def _attributes_md(configs: dict) -> list[str]:
  out = []
  for label, v in configs.items():
    a = v.get("attributes")
    if not a:
      continue
    fmt = lambda x, f="+.3f": "n/a" if x is None else format(x, f)  # noqa: E731
    out.append(f"\n**{label}** (vectors from {a['windows'][0]} windows, measured on "
               f"{a['windows'][1]}; diagonal mean {fmt(a['diagonal_mean'])}, off-diagonal mean "
               f"|change| {fmt(a['off_diagonal_mean_abs'], '.3f')}):\n")
    out.append("| vector \\ attribute | " + " | ".join(a["names"]) + " |")
    out.append("|---" * 6 + "|")
    for name, row in zip(a["names"], a["matrix"]):
      out.append(f"| {name} | " + " | ".join(fmt(x, "+.2f") for x in row) + " |")
  return out


def plot_reconstruction(configs: dict, path: str) -> None:
  plt = _plt()
  labels = [k for k, v in configs.items() if "reconstruction" in v]
  fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(labels), 3.6))
  for j, (key, name) in enumerate((("teacher_forced_accuracy", "teacher-forced"),
                                   ("sampled_accuracy", "sampled (argmax from μ)"))):
    m = [configs[k]["reconstruction"][key] for k in labels]
    ax.bar([i + 0.38 * j for i in range(len(labels))], [d["mean"] for d in m], 0.36,
           yerr=[[d["mean"] - d["lo"] for d in m], [d["hi"] - d["mean"] for d in m]],
           capsize=3, label=name)
  ax.set_xticks([i + 0.19 for i in range(len(labels))], labels)
  ax.set_ylabel("per-step accuracy (95% CI)")
  ax.set_ylim(0, 1)
  ax.legend(loc="lower right", fontsize=8)
  ax.set_title("Reconstruction of held-out windows")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_interpolation(results: dict, path: str) -> None:
  plt = _plt()
  alphas = results["alphas"]
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
  series = [(f"latent: {k}", v["interpolation"], "-") for k, v in results["configs"].items()
            if "interpolation" in v]
  if "data_interpolation" in results:
    series.append(("data space", results["data_interpolation"], "--"))
  for name, d, style in series:
    ax1.plot(alphas, d["hamming_to_a"], style, marker="o", ms=3, label=name)
    ax2.plot(alphas, d["normalised_cost"]["mean_over_endpoints"], style, marker="o", ms=3,
             label=name)
  if "data_interpolation" in results:
    ax1.axhline(results["data_interpolation"]["hamming_a_b"], color="grey", lw=0.8, ls=":",
                label="Hamming(A, B)")
  ax1.set_xlabel("α")
  ax1.set_ylabel("Hamming distance to A")
  ax2.set_xlabel("α")
  ax2.set_ylabel("LM cost / mean cost of A and B")
  ax2.axhline(1.0, color="grey", lw=0.8, ls=":")
  ax1.legend(fontsize=7)
  ax2.legend(fontsize=7)
  ax1.set_title("Interpolation: distance to A")
  ax2.set_title("Interpolation: 5-gram LM cost (normalised)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_attributes(configs: dict, path: str) -> None:
  plt = _plt()
  import numpy as np  # noqa: PLC0415
  labels = [k for k, v in configs.items() if "attributes" in v]
  fig, axes = plt.subplots(1, len(labels), figsize=(4.4 * len(labels), 4.2), squeeze=False)
  for ax, k in zip(axes[0], labels):
    a = configs[k]["attributes"]
    m = np.array([[np.nan if x is None else x for x in row] for row in a["matrix"]])
    lim = max(np.nanmax(np.abs(m)) if np.isfinite(m).any() else 0.0, 1e-6)
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
    short = [n.replace("syncopation_", "sync ").replace("_", " ") for n in a["names"]]
    ax.set_xticks(range(5), short, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(5), short, fontsize=7)
    for i in range(5):
      for j in range(5):
        ax.text(j, i, "n/a" if np.isnan(m[i, j]) else f"{m[i, j]:+.2f}", ha="center",
                va="center", fontsize=6)
    ax.set_title(f"{k}: relative change", fontsize=9)
    ax.set_xlabel("attribute measured", fontsize=8)
    ax.set_ylabel("vector added", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write(out: str, results: dict) -> dict:
  """results.json, report.md and the plots into `out`; returns {name: path} of the plots."""
  from mvae_jax.bench import interpolation as interp  # noqa: F401,PLC0415
  s = results["suite"]
  configs = results["configs"]
  results["alphas"] = [i / (s["interpolation"]["alphas"] - 1)
                       for i in range(s["interpolation"]["alphas"])]
  plots = {}
  if any("reconstruction" in v for v in configs.values()):
    plots["reconstruction"] = os.path.join(out, PLOTS["reconstruction"])
    plot_reconstruction(configs, plots["reconstruction"])
  if any("interpolation" in v for v in configs.values()):
    plots["interpolation"] = os.path.join(out, PLOTS["interpolation"])
    plot_interpolation(results, plots["interpolation"])
  if any("attributes" in v for v in configs.values()):
    plots["attributes"] = os.path.join(out, PLOTS["attributes"])
    plot_attributes(configs, plots["attributes"])
  results["plots"] = {k: os.path.basename(v) for k, v in plots.items()}
  results["paper_finding"] = paper_finding(configs)
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  t = results["timings_s"]
  train_s = sum(v for k, v in t.items() if k.startswith("train "))
  md = [f"# mvae bench {s['name']} (preset {s['preset']})", "",
        s["description"], "",
        f"- data: {results['data']['dataset']} ({results['data']['converter']}), "
        f"{results['data']['train_windows']} training windows; evaluated on the "
        f"{results['data']['eval_split']} split ({results['data']['held_out_windows']} windows)",
        f"- budget: {s['train']['num_steps']} steps of batch {s['train']['batch_size']} per config "
        f"(seed {s['seed']}; overrides {s['train']['overrides'] or 'none'})",
        f"- wall time: {sum(t.values()):.0f} s in all stages ({train_s:.0f} s training), "
        f"written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        ""]
  if any("reconstruction" in v for v in configs.values()):
    md += ["## Reconstruction (paper Table 1)", "", reconstruction.__doc__.split("Definitions")[1]
           .split("\n", 1)[1].strip(), ""] + _reconstruction_md(configs) + [
           "", "![reconstruction](reconstruction.png)", "", "### The paper's finding at this budget", ""]
    md += results["paper_finding"] or ["- needs a flat and a hierarchical config"]
    md.append("")
  if "interpolation" in plots:
    md += ["## Interpolation", "", interpolation.__doc__.split("Definitions")[1]
           .split("\n", 1)[1].strip(), "", f"{s['interpolation']['pairs']} pairs, "
           f"{s['interpolation']['alphas']} values of α, {s['interpolation']['method']}.", ""]
    md += _interpolation_md(results) + ["", "![interpolation](interpolation.png)", ""]
  if "attributes" in plots:
    md += ["## Attribute vectors", "", attributes_eval.__doc__.split("Definition")[1]
           .split("\n", 1)[1].strip()] + _attributes_md(configs) + [
           "", "![attributes](attributes.png)", ""]
  if any("throughput" in v for v in configs.values()):
    md += ["## Throughput", "", "FLOPs: matrix-product FLOPs of forward + backward "
           "(`mvae_jax.train.flops`, scan bodies × trip count); XLA's cost analysis, which counts "
           "each scan body once, beside it. Timed on random labels after compiling.", ""]
    md += _throughput_md(configs) + [""]
  with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(md))
  return plots


__all__ = ["write", "paper_finding", "PLOTS"]
