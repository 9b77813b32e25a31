"""Prints the ablation table from the runs of plugins/mcf/scripts/ablations."""
import json
import sys
from pathlib import Path

# (probe run, pre-training run or None, row label), in the table's order.
VARIANTS = [
    ("mcf", "mcf", "MCF (MIM on teacher features + mask contrastive)"),
    ("mim_only", "mim_only", "MIM on teacher features only"),
    ("contrastive_only", "contrastive_only", "mask contrastive only"),
    ("pixel_mim", "pixel_mim", "pixel MIM (MAE)"),
    ("moco_v3", None, "MoCo v3 (the teacher)"),
]
# (task, metric, column heading); mcf_all.yaml evaluates alignment, then parsing.
COLUMNS = [
    ("alignment", "nme_box", "NME_box % ↓"),
    ("alignment", "nme_diag", "NME_diag % ↓"),
    ("alignment", "nme_inter_ocular", "NME i-o % ↓"),
    ("parsing", "fg_mean", "parsing fg F1 % ↑"),
    ("parsing", "miou", "parsing mIoU % ↑"),
]


def load(path: Path):
    """The results of a completed run, or None."""
    results = path / "results.json"
    if not results.exists():
        return None
    data = json.loads(results.read_text())
    return data if data["status"] == "completed" else None


def cells(evaluations, key):
    """The table's cells from one run's evaluations (`metrics` or `random_init`)."""
    by_task = {e["task"]: e for e in evaluations}
    return [f"{by_task[task][key][metric]:.2f}" for task, metric, _ in COLUMNS]


def losses(out: Path, pretrain):
    """The pre-training losses, first -> final, or a dash."""
    if pretrain is None:
        return "(teacher: experiments/moco_v3.yaml)"
    data = load(out / "pretrain" / pretrain)
    if data is None or not data.get("pretrain"):
        return "not pre-trained"
    first = data["pretrain"].get("first_losses", {})
    final = data["pretrain"]["final_losses"]
    return ", ".join(f"{k} {first[k]:.3f} -> {v:.3f}" if k in first else f"{k} {v:.3f}" for k, v in sorted(final.items()))


def main(out: Path) -> None:
    print("| pre-training | " + " | ".join(c[2] for c in COLUMNS) + " | pre-training losses, first -> final |")
    print("|" + "---|" * (len(COLUMNS) + 2))
    for name, pretrain, label in VARIANTS:
        data = load(out / name)
        if data is None:
            print(f"| {label} | " + " | ".join("not run" for _ in COLUMNS) + f" | {losses(out, pretrain)} |")
            continue
        print(f"| {label} | " + " | ".join(cells(data["evaluations"], "metrics")) + f" | {losses(out, pretrain)} |")
        if name == "mcf":
            twin = cells(data["evaluations"], "random_init")
    if (out / "mcf").exists() and load(out / "mcf") is not None:
        print("| random init (the twins of the MCF run) | " + " | ".join(twin) + " | |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/mcf_ablations"))
