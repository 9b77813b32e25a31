"""Prints the science table from the runs of plugins/lafs/scripts/science."""
import json
import sys
from pathlib import Path

# (variant, row label), in the table's order.
VARIANTS = [
    ("lafs", "LAFS (landmark tokens, jitter, local subsets)"),
    ("grid", "LAFS on grid patches"),
    ("no_aug", "LAFS without the landmark augmentations"),
    ("dino_vit", "DINO on a plain ViT"),
]
# (run, evaluation index, column heading): verification accuracy (%) of the
# fine-tuning on every image, then on 1, 2 and 5 images per identity, then
# of the frozen backbone (no training).
COLUMNS = [
    ("fr", 0, "all images"),
    ("fewshot", 0, "k = 1"),
    ("fewshot", 1, "k = 2"),
    ("fewshot", 2, "k = 5"),
    ("frozen", 0, "frozen"),
]


def load(path: Path):
    """The results of a completed run, or None."""
    results = path / "results.json"
    if not results.exists():
        return None
    data = json.loads(results.read_text())
    return data if data["status"] == "completed" else None


def cell(evaluation, key):
    """`accuracy (std)` of one evaluation's `metrics` or `random_init`."""
    m = evaluation.get(key)
    return "-" if not m else f"{m['accuracy']:.1f} ({m['accuracy_std']:.1f})"


def row(out: Path, name: str, key: str):
    """One variant's cells, from its fr and fewshot runs."""
    cells = []
    for run, index, _ in COLUMNS:
        data = load(out / name / run)
        cells.append("not run" if data is None else cell(data["evaluations"][index], key))
    return cells


def losses(out: Path, name: str):
    """The pre-training loss, first -> final."""
    data = load(out / "pretrain" / name)
    if data is None or not data.get("pretrain"):
        return "not pre-trained"
    first = data["pretrain"].get("first_losses", {})
    final = data["pretrain"]["final_losses"]
    return ", ".join(f"{k} {first[k]:.2f} -> {v:.2f}" if k in first else f"{k} {v:.2f}" for k, v in sorted(final.items()))


def main(out: Path) -> None:
    print("| pre-training | " + " | ".join(c[2] for c in COLUMNS) + " | pre-training loss |")
    print("|" + "---|" * (len(COLUMNS) + 2))
    for name, label in VARIANTS:
        print(f"| {label} | " + " | ".join(row(out, name, "metrics")) + f" | {losses(out, name)} |")
    print("| random init, fViT (the LAFS runs' twins) | " + " | ".join(row(out, "lafs", "random_init")) + " | |")
    print("| random init, ViT (the DINO runs' twins) | " + " | ".join(row(out, "dino_vit", "random_init")) + " | |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/lafs_science"))
