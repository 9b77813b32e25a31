"""Prints the disentanglement table from the runs of plugins/pcl/scripts/disentangle."""
import json
import sys
from pathlib import Path

VARIANTS = ["full", "no_decoder", "no_orthogonal", "no_pose_branch", "no_negative_mixing", "plain_contrastive"]
FEATURES = ["face", "pose", "pooled"]
# (task, metric, column heading); the evaluations are ordered task by task,
# each over FEATURES (experiments/pcl_disentangle.yaml).
TASKS = [
    ("fer", "accuracy", "expression acc % ↑"),
    ("fr", "accuracy", "identity verif. % ↑"),
    ("pose", "mae_mean", "pose MAE ° ↓"),
    ("au", "f1_mean", "AU F1 % ↑"),
]


def main(out: Path) -> None:
    head = "| pre-training | feature | " + " | ".join(t[2] for t in TASKS) + " |"
    print(head)
    print("|" + "---|" * (2 + len(TASKS)))
    full = json.loads((out / "full" / "results.json").read_text())
    rows = [("random init", full, "random_init")]
    for name in VARIANTS:
        path = out / name / "results.json"
        if path.exists() and json.loads(path.read_text())["status"] == "completed":
            rows.append((name.replace("_", " "), json.loads(path.read_text()), "metrics"))
    for label, results, key in rows:
        evaluations = results["evaluations"]
        for f, feature in enumerate(FEATURES):
            cells = []
            for t, (task, metric, _) in enumerate(TASKS):
                e = evaluations[t * len(FEATURES) + f]
                assert e["task"] == task, (e["task"], task)
                cells.append(f"{e[key][metric]:.2f}")
            print(f"| {label} | `{feature}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/pcl_disentangle"))
