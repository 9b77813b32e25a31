"""Reference values of the task metrics, for core/visage-tasks/tests/reference.rs:
scikit-learn for classification, AU and parsing scores and the ROC, numpy for
pose, NME and the CED, and a numpy reimplementation of LAFS's 10-fold
verification protocol written from shared/design/tasks.md.

    python metrics.py DIR    # reads DIR/inputs.json, writes DIR/reference.json
"""
import json
import sys

import numpy as np
from scipy.integrate import simpson
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    jaccard_score,
    roc_auc_score,
    roc_curve,
)


def classification(d):
    pred, true = np.array(d["predicted"]), np.array(d["target"])
    return {
        "accuracy": 100 * accuracy_score(true, pred),
        "mean_class_accuracy": 100 * balanced_accuracy_score(true, pred),
        "confusion": confusion_matrix(true, pred, labels=range(d["classes"])).ravel().tolist(),
    }


def au(d):
    p, t = np.array(d["probabilities"]), np.array(d["target"]).astype(int)
    f1 = [100 * f1_score(t[:, k], (p[:, k] >= 0.5).astype(int), zero_division=0) for k in range(t.shape[1])]
    aucs = [roc_auc_score(t[:, k], p[:, k]) for k in range(t.shape[1]) if len(set(t[:, k])) == 2]
    return {"f1": f1, "auc_mean": 100 * float(np.mean(aucs))}


def pose(d):
    err = np.abs(np.array(d["predicted"]) - np.array(d["target"])).mean(0)
    return {"mae": err.tolist() + [float(err.mean())]}


def lafs_verification(d):
    """The protocol of tasks.md: normalised embeddings, squared L2 distance,
    thresholds arange(0, 4, 0.01), contiguous folds (KFold without shuffle),
    each fold's threshold the first best on the other folds, "same" when the
    distance is below it."""
    e = np.array(d["embeddings"])
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    dist = ((e[0::2] - e[1::2]) ** 2).sum(1)
    same = np.array(d["same"]).astype(bool)
    thresholds = np.arange(0, 4, 0.01)
    folds = np.array_split(np.arange(len(same)), d["folds"])

    def acc(t, idx):
        return np.mean((dist[idx] < t) == same[idx])

    accuracies, chosen = [], []
    for test in folds:
        train = np.setdiff1d(np.arange(len(same)), test)
        best = thresholds[np.argmax([acc(t, train) for t in thresholds])]
        chosen.append(best)
        accuracies.append(100 * acc(best, test))
    return {"accuracy": float(np.mean(accuracies)), "std": float(np.std(accuracies)), "thresholds": chosen}


def tar_at_far(d):
    fpr, tpr, _ = roc_curve(np.array(d["same"]).astype(int), np.array(d["scores"]))
    # IJB_evaluation.py's rule: flip, then the first nearest point of the
    # flipped curve, i.e. the last of the original (the largest TPR).
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    tars = []
    for far in d["fars"]:
        _, nearest = min(zip(np.abs(fpr - far), range(len(fpr))))
        tars.append(100 * tpr[nearest])
    return {"tar": tars}


def alignment(d):
    pred, true = np.array(d["predicted"]), np.array(d["target"])
    boxes, visible = np.array(d["boxes"]), np.array(d["visible"]) > 0.5
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    left, right = d["pupils"]
    units = {
        "inter_ocular": np.linalg.norm(true[:, d["corners"][0]] - true[:, d["corners"][1]], axis=-1),
        "inter_pupil": np.linalg.norm(true[:, left].mean(1) - true[:, right].mean(1), axis=-1),
        "box": np.sqrt(w * h),
        "diag": np.sqrt(w * w + h * h),
    }
    errors = np.linalg.norm(pred - true, axis=-1)
    out = {}
    for name, unit in units.items():
        nmes = errors.mean(1) / unit
        out[f"nme_{name}"] = 100 * nmes.mean()
    nmes_visible = (errors * visible).sum(1) / visible.sum(1) / units["box"]
    out["nme_box_visible"] = 100 * nmes_visible.mean()
    t, nmes = d["threshold"], errors.mean(1) / units["box"]
    out["failure_rate"] = 100 * np.mean(nmes > t)
    out["auc_exact"] = 100 * np.mean(np.maximum(t - nmes, 0)) / t
    # FaRL's and HRNet's: Simpson's rule over the CED on a grid of step 1e-4.
    xs = np.arange(0.0, t + 1e-4, 1e-4)
    ced = [np.count_nonzero(nmes <= x) / len(nmes) for x in xs]
    out["auc_simpson"] = 100 * simpson(ced, x=xs) / t
    return out


def parsing(d):
    pred, true = np.array(d["predicted"]).ravel(), np.array(d["target"]).ravel()
    present = sorted(set(pred) | set(true))
    f1 = f1_score(true, pred, labels=present, average=None)
    f1_by_class = {int(c): 100 * float(v) for c, v in zip(present, f1)}
    return {
        "confusion": confusion_matrix(true, pred, labels=range(d["classes"])).ravel().tolist(),
        "f1": [f1_by_class.get(c) for c in range(d["classes"])],
        "fg_mean": float(np.mean([v for c, v in f1_by_class.items() if c != 0])),
        "miou": 100 * jaccard_score(true, pred, average="macro"),
    }


def main(directory):
    with open(f"{directory}/inputs.json") as f:
        inputs = json.load(f)
    cases = {
        "classification": classification,
        "au": au,
        "pose": pose,
        "verification": lafs_verification,
        "tar": tar_at_far,
        "alignment": alignment,
        "parsing": parsing,
    }
    reference = {name: cases[name](inputs[name]) for name in inputs}
    with open(f"{directory}/reference.json", "w") as f:
        json.dump(reference, f, default=float)


if __name__ == "__main__":
    main(sys.argv[1])
