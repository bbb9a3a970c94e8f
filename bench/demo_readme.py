"""Renders README.md's "The demo's figures" tables from a `mvae demo` run's demo_report.json, so
the README states exactly what the run printed.

  python bench/demo_readme.py mvae_demo/demo_report.json "the 2-core x86_64 CI machine, quiet"
"""

from __future__ import annotations

import json
import sys


def render(r: dict, machine: str) -> str:
  rec, music, s = r["reconstruction"], r["music"], r["seconds"]
  m, maj = rec["model"], rec["majority_class"]
  t = r["targets"]
  out = [
      f"The README's first command on a fresh clone ({machine}): `mvae demo` took {s['total']} s "
      f"wall in all ({s.get('allocator', 'system malloc')}), {s['data']} s of it building "
      f"`folk_melodies` and {s['train']} s training `{r['config']}` ({r['steps']} steps of batch "
      f"{r['batch_size']}); figures from its `mvae_demo/demo_report.json`, on "
      f"{rec['windows']:,} held-out windows ({rec['onset_steps']:,} onset steps; every window of "
      "the validation split). Reconstruction is argmax decoding from μ, free-running:",
      "",
      "| predictor | accuracy, all steps | accuracy, onset steps |",
      "|---|---|---|",
      f"| **the model** | {m['overall']:.4f} | {m['onset']:.4f} |",
      f"| most frequent class (\"hold\") | {maj['overall']:.4f} | {maj['onset']:.4f} |",
      f"| repeat the previous token | {rec['repeat_previous']['overall']:.4f} | "
      f"{rec['repeat_previous']['onset']:.4f} |",
      "",
  ]
  o, n = t["reconstruction_overall"], t["reconstruction_onset"]
  def verdict(name: str, x: dict) -> str:
    if x["met"]:
      return f"{name} ≥ {x['goal']}: **met** ({x['got']:.4f})"
    return (f"{name} ≥ {x['goal']}: **not met** ({x['got']:.4f}, short by "
            f"{x['goal'] - x['got']:.3f})")

  out.append(f"Targets (issue): {verdict('overall', o)}; {verdict('onsets', n)}. The model "
             f"learned: +{m['overall'] - maj['overall']:.3f} over the majority class, and "
             f"{100 * m['onset']:.0f}% of note onsets right where both baselines get "
             f"{100 * max(maj['onset'], rec['repeat_previous']['onset']):.0f}%.")
  out += ["", "Learning curve (every held-out window, z = μ):", "",
          "| step | train loss | eval r_loss | eval KL bits | teacher-forced acc. | "
          "argmax reconstruction |", "|---|---|---|---|---|---|"]
  for c in r["learning_curve"]:
    out.append(f"| {c['step']} | {c['train_loss']:.2f} | {c['eval_r_loss']:.2f} | "
               f"{c['eval_kl_bits']:.1f} | {c['eval_teacher_forced_accuracy']:.4f} | "
               f"{c['eval_argmax_reconstruction']:.4f} |")
  out += ["", f"Samples ({music['num_samples']}, z ~ N(0, I), temperature 0.5) against the "
          "training windows (p5 / p50 / p95):", "",
          "| statistic | samples | training windows |", "|---|---|---|"]
  for k in music["statistics"]:
    sp, tp = music["samples"][k], music["training_windows"][k]
    fmt = lambda p: " / ".join(f"{p[q]:g}" for q in ("p5", "p50", "p95"))  # noqa: E731
    out.append(f"| {k} | {fmt(sp)} | {fmt(tp)} |")
  rate = music["heldout_windows_outside_rate"]
  out += ["", f"{music['samples_outside_training_p5_p95']} of {music['num_samples']} samples fall "
          "outside the training windows' 5th-95th percentile on some statistic (goal: none); "
          f"held-out real windows do so at a rate of {rate}, i.e. "
          f"{rate * music['num_samples']:.1f} of {music['num_samples']} expected of real music"
          + (f", and {music['num_samples']} held-out windows drawn at random have none outside "
             f"with probability {music['heldout_draw_none_outside_probability']}."
             if "heldout_draw_none_outside_probability" in music else ".")]
  return "\n".join(out)


if __name__ == "__main__":
  with open(sys.argv[1]) as f:
    print(render(json.load(f), sys.argv[2] if len(sys.argv) > 2 else "this machine"))
