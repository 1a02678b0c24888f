"""``visionlake bench lfw`` / ``bench faces``: scoring maths, pair files, and a small real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from visionlake.bench.faces_lfw import (
    MISSING_SCORE,
    PairList,
    best_threshold,
    cross_validate,
    read_lfw_pairs,
    read_pairs_csv,
    score_pairs,
    tar_at_far,
    view1_threshold_report,
)
from visionlake.errors import BadInput


def test_best_threshold_and_cross_validation_on_separable_scores():
    rng = np.random.default_rng(0)
    same = np.array([True] * 300 + [False] * 300)
    scores = np.where(same, rng.uniform(0.6, 1.0, 600), rng.uniform(-0.2, 0.5, 600))
    t = best_threshold(scores, same)
    assert 0.5 <= t <= 0.6
    acc, std = cross_validate(scores, same, np.arange(600) % 10)
    assert acc == 1.0 and std == 0.0
    # one flipped label costs exactly one pair in one fold
    flipped = same.copy()
    flipped[0] = False
    acc2, _ = cross_validate(scores, flipped, np.arange(600) % 10)
    assert abs(acc2 - (1 - 1 / 600)) < 1e-9


def test_view1_threshold_is_chosen_on_view1_and_only_applied_to_view2():
    """View 2 would prefer a lower threshold; the report must keep View 1's and pay for it."""
    vecs = {"r": np.array([1.0, 0.0])}
    for c in (0.9, 0.8, 0.3, 0.2, 0.6, 0.5, 0.1):
        vecs[f"c{c}"] = np.array([c, np.sqrt(1 - c * c)])
    view1 = PairList(["r"] * 4, ["c0.9", "c0.8", "c0.3", "c0.2"], [True, True, False, False], [0, 1, 2, 3])
    view2 = PairList(["r"] * 3, ["c0.6", "c0.5", "c0.1"], [True, True, False], [0, 1, 2])
    rep = view1_threshold_report(view1, view2, vecs, "cosine")
    assert rep["threshold"] == pytest.approx(0.55) and rep["view1_accuracy"] == 1.0
    assert rep["accuracy_view2"] == pytest.approx(2 / 3, abs=1e-4)  # 0.5 < 0.55: one genuine pair missed
    peer = view1_threshold_report(view1, view2, vecs, "euclidean")
    assert peer["accuracy_view2"] == pytest.approx(2 / 3, abs=1e-4) and peer["threshold_kind"].startswith("euclid")


def test_tar_at_far_counts_impostors_above_threshold():
    imp = np.linspace(0, 1, 1000)  # one impostor at each level
    gen = np.array([0.9992, 0.9995, 0.5])
    scores = np.concatenate([imp, gen])
    same = np.array([False] * 1000 + [True] * 3)
    # FAR 1e-3 of 1000 impostors: one may pass -> threshold at the 2nd highest impostor (0.998998...)
    assert tar_at_far(scores, same, 1e-3) == pytest.approx(2 / 3)


def test_missing_face_is_maximum_distance_never_dropped():
    pairs = PairList(["a", "a", "c"], ["b", "c", "d"], [True, False, True], [0, 1, 2])
    v = np.array([1.0, 0.0], dtype=np.float32)
    vectors = {"a": v, "b": v, "c": None, "d": v}
    cos = score_pairs(pairs, vectors, "cosine")
    assert cos[0] == pytest.approx(1.0) and cos[1] == MISSING_SCORE and cos[2] == MISSING_SCORE
    euc = score_pairs(pairs, vectors, "euclidean")
    assert euc[0] == pytest.approx(0.0) and euc[1] < euc[0] and len(euc) == 3


def test_read_pair_files(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("2 1\nAl 1 2\nAl 1 Bo 3\nCy 2 4\nBo 1 Cy 1\n")
    p = read_lfw_pairs(f, tmp_path)
    assert p.same == [True, False, True, False] and p.fold == [0, 0, 1, 1]
    assert p.a[1].endswith("Al/Al_0001.jpg") and p.b[1].endswith("Bo/Bo_0003.jpg")
    f.write_text("3 1\nAl 1 2\n")
    with pytest.raises(BadInput, match="header says"):
        read_lfw_pairs(f, tmp_path)
    c = tmp_path / "p.csv"
    c.write_text("a,b,same\nx.jpg,y.jpg,1\nx.jpg,z.jpg,0\n")
    p = read_pairs_csv(c, tmp_path)
    assert p.same == [True, False] and p.a[0] == str(tmp_path / "x.jpg")
    c.write_text("left,right\n1,2\n")
    with pytest.raises(BadInput, match="a,b,same"):
        read_pairs_csv(c, tmp_path)


def _cli(args: list[str]) -> tuple[int, str]:
    from visionlake.cli import app

    res = CliRunner().invoke(app, args)
    return res.exit_code, res.stdout  # progress goes to stderr, also with --json


def _pairs_csv(lfw_root: Path, path: Path, n_pairs: int = 40) -> Path:
    """~40 View 1 test pairs (half same, half different), as a CSV relative to the images folder."""
    pairs = read_lfw_pairs(lfw_root / "pairsDevTest.txt", lfw_root)
    same = [i for i, s in enumerate(pairs.same) if s][: n_pairs // 2]
    diff = [i for i, s in enumerate(pairs.same) if not s][: n_pairs // 2]
    root = lfw_root / "images"
    lines = ["a,b,same"]
    for i in same + diff:
        a, b = Path(pairs.a[i]).relative_to(root), Path(pairs.b[i]).relative_to(root)
        lines.append(f"{a},{b},{int(pairs.same[i])}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bench_lfw_on_a_pair_csv(tmp_path, lfw_root):
    csv_file = _pairs_csv(lfw_root, tmp_path / "pairs.csv")
    code, out = _cli(["bench", "lfw", "--pairs-csv", str(csv_file), "--root", str(lfw_root / "images"),
                      "--json"])
    assert code == 0, out
    r = json.loads(out)
    for key in ("accuracy", "accuracy_std", "tar_at_far_1e-3", "images", "faces_not_found", "images_per_s"):
        assert key in r
    assert r["pairs"] == 40 and r["images"] > 40
    assert r["accuracy"] >= 0.9
    assert r["images_per_s"] > 0


def test_same_person_pairs_score_higher_on_average(lfw_root):
    from visionlake.bench.faces_lfw import run_side

    pairs = read_lfw_pairs(lfw_root / "pairsDevTest.txt", lfw_root)
    keep = [i for i, s in enumerate(pairs.same) if s][:10] + [i for i, s in enumerate(pairs.same) if not s][:10]
    sub = PairList([pairs.a[i] for i in keep], [pairs.b[i] for i in keep], [pairs.same[i] for i in keep],
                   [0] * 20)
    res = run_side("ours", sub.images(), 1, {"pick": "centre"})
    scores = score_pairs(sub, res.vectors, "cosine")
    same = np.array(sub.same)
    # dlib vectors share a large common direction: impostors sit near 0.85 cosine, genuine near 0.95
    assert scores[same].mean() > scores[~same].mean() + 0.05
    t = best_threshold(scores, same)
    assert np.mean((scores >= t) == same) >= 0.9


def test_bench_faces_reports_keys_and_peer_ratio(tmp_path, lfw_root):
    pytest.importorskip("face_recognition")
    code, out = _cli(["bench", "faces", "--data", str(lfw_root / "images"), "--limit", "6", "--peer",
                      "--json"])
    assert code == 0, out
    r = json.loads(out)
    for key in ("images_per_s", "faces_found", "peak_rss_mb", "peer", "ratio", "stage_seconds"):
        assert key in r
    assert r["images"] == 6 and r["faces_found"] >= 6 and r["peer"]["faces_found"] >= 6
    assert r["ratio"] == pytest.approx(r["images_per_s"] / r["peer"]["images_per_s"], rel=0.01)
    assert set(r["stage_seconds"]) >= {"decode_s", "detect_s", "embed_s"}


def test_bench_lfw_bad_options_are_clear_errors(tmp_path):
    from visionlake.cli import app

    res = CliRunner().invoke(app, ["bench", "lfw", "--pairs-csv", str(tmp_path / "x.csv"), "--json"])
    assert isinstance(res.exception, BadInput) and "--root" in res.exception.message
    res = CliRunner().invoke(app, ["bench", "lfw", "--data", str(tmp_path / "nowhere"), "--json"])
    assert isinstance(res.exception, BadInput) and "not found" in res.exception.message
    res = CliRunner().invoke(app, ["bench", "faces", "--data", str(tmp_path), "--json"])
    assert isinstance(res.exception, BadInput) and "no images" in res.exception.message
    (tmp_path / "p.csv").write_text("a,b,same\nx.jpg,y.jpg,1\n")
    res = CliRunner().invoke(app, ["bench", "lfw", "--pairs-csv", str(tmp_path / "p.csv"), "--root", str(tmp_path),
                                   "--view1-threshold", "all", "--json"])
    assert isinstance(res.exception, BadInput) and "LFW folder" in res.exception.message
    res = CliRunner().invoke(app, ["bench", "lfw", "--pairs-csv", str(tmp_path / "p.csv"), "--root", str(tmp_path),
                                   "--view1-threshold", "some", "--json"])
    assert isinstance(res.exception, BadInput) and "none, all or shared" in res.exception.message
