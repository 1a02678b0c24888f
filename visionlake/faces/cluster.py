"""Group the faces of people nobody enrolled into "unknown person" groups, incrementally.

Method (chosen by ``visionlake bench cluster``, which measures it against DBSCAN on LFW):

* ``average`` (default up to :data:`AVERAGE_MAX` faces): agglomerative clustering with average
  linkage on cosine distance, cut at a fixed similarity threshold. Average linkage needs a whole
  group to be similar on average, so one ambiguous face cannot chain two people together the way
  DBSCAN's single-link density reachability does.
* ``cw``: Chinese whispers (Biemann 2006, the method of ``dlib.chinese_whispers_clustering``) on
  a k-nearest-neighbour graph whose edges pass the threshold; linear in the number of edges, so
  used above :data:`AVERAGE_MAX` faces.

Incremental: on each run, faces that are neither enrolled nor grouped first join the nearest
existing group if their similarity to its centroid passes the join threshold; the rest are
clustered among themselves, and clusters of at least ``min_size`` faces become new groups.
Singletons stay ungrouped and are reconsidered on the next run, when a second photo may arrive.
Groups can be renamed, merged, split, or named as an enrolled person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from visionlake.errors import BadInput, NotFound
from visionlake.faces.models import Face, FaceGroup, Person
from visionlake.faces.sync import face_index, sync_index, unseal

if TYPE_CHECKING:
    from visionlake.lake import Lake

#: Above this many faces, average linkage (quadratic memory) gives way to Chinese whispers.
AVERAGE_MAX = 20_000
#: Cosine-similarity threshold per pack used when the caller gives none. For dlib-resnet-v1 this
#: is the value the clustering benchmark settles on (see README); other packs fall back to
#: :func:`default_threshold` (the pack's FAR 1e-3 verification threshold).
#: dlib-resnet-v1: 0.94 maximised BCubed F (0.949) on the people of LFW View 1 ``pairsDevTrain.txt``
#: (4,615 images), swept 0.93-0.95 in steps of 0.005; its impostor similarities centre near 0.84.
#: arcface-s: 0.35 maximised BCubed F (0.9958) on the same View 1 people (3,443 faces, 2,132 identities),
#: swept 0.20-0.55 in steps of 0.025 (0.325: 0.9948, 0.375: 0.9954); far above its FAR 1e-5 threshold.
CLUSTER_THRESHOLDS: dict[str, float] = {"dlib-resnet-v1": 0.94, "arcface-s": 0.35}

def default_threshold(pack: str) -> float:
    """Threshold for a pack: the measured clustering value, else its FAR 1e-3 verification threshold."""
    if pack in CLUSTER_THRESHOLDS:
        return CLUSTER_THRESHOLDS[pack]
    from visionlake.faces.pipeline import calibrated_threshold

    return float(calibrated_threshold(pack, 1e-3))


# ---------------------------------------------------------------------------------------------- algorithms
def _unit(vecs: np.ndarray) -> np.ndarray:
    v = np.asarray(vecs, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return v / n


def average_linkage(vecs: np.ndarray, threshold: float) -> np.ndarray:
    """Labels from average-linkage agglomerative clustering cut at cosine similarity ``threshold``."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(vecs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    z = linkage(_unit(vecs).astype(np.float64), method="average", metric="cosine")
    return fcluster(z, t=1.0 - threshold, criterion="distance").astype(np.int64) - 1


def knn_graph(vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, neighbour indices), each (n, k), excluding each point itself (exact FAISS search)."""
    import faiss

    v = _unit(vecs)
    index = faiss.IndexFlatIP(v.shape[1])
    index.add(v)
    sims, nbrs = index.search(v, min(k + 1, len(v)))
    return sims[:, 1:], nbrs[:, 1:]


def chinese_whispers(vecs: np.ndarray, threshold: float, k: int = 30, iterations: int = 30,
                     seed: int = 0) -> np.ndarray:
    """Labels from Chinese whispers on the kNN graph whose edges have similarity >= ``threshold``.

    Each node repeatedly takes the label with the largest summed edge weight among its neighbours,
    in a random order per pass, until no label changes.
    """
    n = len(vecs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sims, nbrs = knn_graph(vecs, k)
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i in range(n):
        for s, j in zip(sims[i].tolist(), nbrs[i].tolist(), strict=True):
            if j >= 0 and j != i and s >= threshold:
                adj[i].append((j, s))
                adj[j].append((i, s))
    labels = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        changed = 0
        for i in rng.permutation(n).tolist():
            if not adj[i]:
                continue
            score: dict[int, float] = {}
            for j, s in adj[i]:
                score[int(labels[j])] = score.get(int(labels[j]), 0.0) + s
            best = max(score.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            if best != labels[i]:
                labels[i] = best
                changed += 1
        if not changed:
            break
    _, compact = np.unique(labels, return_inverse=True)
    return compact.astype(np.int64)


def cluster_vectors(vecs: np.ndarray, threshold: float, method: str = "auto") -> np.ndarray:
    """Cluster unit vectors; labels 0..m-1 (every point gets a label; singletons are clusters of one)."""
    if method == "auto":
        method = "average" if len(vecs) <= AVERAGE_MAX else "cw"
    if method == "average":
        return average_linkage(vecs, threshold)
    if method == "cw":
        return chinese_whispers(vecs, threshold)
    raise BadInput(f"unknown clustering method {method!r}; choose auto, average or cw")


def dbscan_labels(vecs: np.ndarray, eps: float, min_samples: int = 2) -> np.ndarray:
    """DBSCAN on cosine distance (the Immich / PhotoPrism approach); noise points become singletons."""
    from sklearn.cluster import DBSCAN

    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="cosine", algorithm="brute").fit_predict(
        _unit(vecs))
    labels = labels.astype(np.int64)
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return labels


def bcubed(true: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """BCubed precision, recall and F1 (Bagga & Baldwin 1998; Amigo et al. 2009)."""
    true = np.asarray(true)
    pred = np.asarray(pred)
    n = len(true)
    if n == 0:
        return 0.0, 0.0, 0.0
    _, t = np.unique(true, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    pair = t.astype(np.int64) * (p.max() + 1) + p
    keys, n_ij = np.unique(pair, return_counts=True)
    ti, pj = keys // (p.max() + 1), keys % (p.max() + 1)
    size_t = np.bincount(t)
    size_p = np.bincount(p)
    precision = float((n_ij.astype(np.float64) ** 2 / size_p[pj]).sum() / n)
    recall = float((n_ij.astype(np.float64) ** 2 / size_t[ti]).sum() / n)
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f


# ---------------------------------------------------------------------------------------------- lake
def _vectors(lake: Lake, rows: list[tuple[int, bytes]]) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return _unit(np.vstack([unseal(lake.cipher, blob) for _i, blob in rows]))


def cluster(lake: Lake, collection: str, threshold: float | None = None, method: str = "auto",
            min_size: int = 2, skip_enrolled_matches: bool = True) -> dict[str, Any]:
    """Group the collection's faces that belong to no person and no group yet (incremental).

    Faces similar to an enrolled person (at the identification threshold) are left alone: they are
    that person's business, not an unknown person's.
    """
    if min_size < 1:
        raise BadInput("min_size must be at least 1")
    col = lake.collection(collection)
    with lake.session() as s:
        pack = s.scalar(select(Face.pack).where(Face.collection_id == col.id).limit(1))
        new_rows = s.execute(
            select(Face.id, Face.embedding).where(
                Face.collection_id == col.id, Face.person_id.is_(None), Face.group_id.is_(None),
                Face.embedding.is_not(None)).order_by(Face.id)
        ).all()
        grouped = s.execute(
            select(Face.group_id, Face.embedding).where(
                Face.collection_id == col.id, Face.person_id.is_(None), Face.group_id.is_not(None),
                Face.embedding.is_not(None))
        ).all()
        has_people = bool(s.scalar(select(func.count(Person.id)).where(Person.collection_id == col.id)))
    report: dict[str, Any] = {"collection": col.name, "new_faces": len(new_rows), "joined_existing": 0,
                              "matched_enrolled": 0, "groups_created": 0, "grouped_new": 0, "ungrouped": 0}
    if not new_rows:
        report["groups"] = _group_count(lake, col.id)
        return report
    thr = float(threshold) if threshold is not None else default_threshold(pack)
    report["threshold"] = round(thr, 4)
    ids = np.array([int(r[0]) for r in new_rows], dtype=np.int64)
    vecs = _vectors(lake, [(r[0], r[1]) for r in new_rows])
    keep = np.ones(len(ids), dtype=bool)

    if skip_enrolled_matches and has_people:
        index = face_index(lake, col.name, vecs.shape[1])
        sync_index(lake, col.name, dim=vecs.shape[1])
        from visionlake.faces.thresholds import calibrated_threshold

        id_thr = float(calibrated_threshold(pack, 1e-3))
        for i, hits in enumerate(index.search(vecs, k=1, where={"known": 1})):
            if hits and hits[0].score >= id_thr:
                keep[i] = False
        report["matched_enrolled"] = int((~keep).sum())

    assign: dict[int, int] = {}  # face id -> group id
    if grouped:
        gids = np.array([int(g) for g, _b in grouped], dtype=np.int64)
        gvecs = _vectors(lake, [(g, b) for g, b in grouped])
        uniq = np.unique(gids)
        cents = _unit(np.vstack([gvecs[gids == g].mean(axis=0) for g in uniq]))
        sims = vecs @ cents.T
        best = sims.argmax(axis=1)
        best_s = sims[np.arange(len(vecs)), best]
        for i in np.nonzero(keep & (best_s >= thr))[0].tolist():
            assign[int(ids[i])] = int(uniq[best[i]])
            keep[i] = False
        report["joined_existing"] = len(assign)

    rest = np.nonzero(keep)[0]
    new_groups: list[list[int]] = []
    if len(rest):
        labels = cluster_vectors(vecs[rest], thr, method)
        for lab in np.unique(labels):
            members = [int(ids[rest[j]]) for j in np.nonzero(labels == lab)[0]]
            if len(members) >= min_size:
                new_groups.append(members)
            else:
                report["ungrouped"] += len(members)

    with lake.session() as s:
        for fid, gid in assign.items():
            s.query(Face).filter(Face.id == fid).update({"group_id": gid})
        for members in new_groups:
            g = FaceGroup(collection_id=col.id)
            s.add(g)
            s.flush()
            s.query(Face).filter(Face.id.in_(members)).update({"group_id": g.id}, synchronize_session=False)
    report["groups_created"] = len(new_groups)
    report["grouped_new"] = sum(len(m) for m in new_groups)
    report["groups"] = _group_count(lake, col.id)
    return report


def _group_count(lake: Lake, collection_id: int) -> int:
    with lake.session() as s:
        return int(s.scalar(select(func.count(FaceGroup.id)).where(FaceGroup.collection_id == collection_id)) or 0)


def _group(s: Any, collection_id: int, group_id: int) -> FaceGroup:
    g = s.get(FaceGroup, int(group_id))
    if g is None or g.collection_id != collection_id:
        raise NotFound(f"no face group {group_id} in this collection (list them with 'visionlake faces groups')")
    return g


def groups(lake: Lake, collection: str) -> list[dict[str, Any]]:
    """Unknown-person groups, largest first, with a few crops to show."""
    col = lake.collection(collection)
    with lake.session() as s:
        rows = s.execute(
            select(FaceGroup, func.count(Face.id)).outerjoin(Face, Face.group_id == FaceGroup.id)
            .where(FaceGroup.collection_id == col.id).group_by(FaceGroup.id)
            .order_by(func.count(Face.id).desc(), FaceGroup.id)
        ).all()
        out = []
        for g, n in rows:
            crops = s.scalars(select(Face.crop).where(Face.group_id == g.id).order_by(Face.quality.desc())
                              .limit(3)).all()
            out.append({"id": g.id, "label": g.label, "faces": int(n), "sample_crops": list(crops)})
    return out


def rename_group(lake: Lake, collection: str, group_id: int, label: str) -> dict[str, Any]:
    """Give a group a label (it stays an unknown person; see :func:`name_group` to enroll it)."""
    col = lake.collection(collection)
    label = (label or "").strip()
    if not label:
        raise BadInput("a group label cannot be empty")
    with lake.session() as s:
        g = _group(s, col.id, group_id)
        g.label = label
    return {"id": int(group_id), "label": label}


def merge_groups(lake: Lake, collection: str, group_ids: list[int]) -> dict[str, Any]:
    """Merge groups into the first one (the others are deleted)."""
    col = lake.collection(collection)
    if len(group_ids) < 2:
        raise BadInput("merging needs at least two group ids")
    target, *others = [int(g) for g in group_ids]
    with lake.session() as s:
        tg = _group(s, col.id, target)
        moved = 0
        for gid in others:
            g = _group(s, col.id, gid)
            moved += s.query(Face).filter(Face.group_id == gid).update({"group_id": target})
            if not tg.label and g.label:
                tg.label = g.label
            s.delete(g)
    return {"id": target, "merged": others, "faces_moved": moved}


def split_group(lake: Lake, collection: str, group_id: int, face_ids: list[int] | None = None,
                threshold: float | None = None) -> dict[str, Any]:
    """Split a group: move the given faces to a new group, or re-cluster it with a stricter threshold.

    Without ``face_ids`` the group's faces are clustered again at ``threshold`` (default: the
    collection's threshold + 0.05); every resulting cluster but the largest becomes a new group.
    """
    col = lake.collection(collection)
    with lake.session() as s:
        _group(s, col.id, group_id)
        rows = s.execute(select(Face.id, Face.embedding, Face.pack).where(Face.group_id == group_id)
                         .order_by(Face.id)).all()
    members = [int(r[0]) for r in rows]
    if face_ids:
        wrong = sorted(set(int(f) for f in face_ids) - set(members))
        if wrong:
            raise BadInput(f"faces {wrong} are not in group {group_id}")
        if len(set(face_ids)) == len(members):
            raise BadInput("splitting off every face of a group would leave it empty; rename it instead")
        parts = [[int(f) for f in face_ids]]
    else:
        if len(rows) < 2:
            raise BadInput(f"group {group_id} has fewer than two faces; nothing to split")
        thr = threshold if threshold is not None else default_threshold(rows[0][2]) + 0.05
        labels = cluster_vectors(_vectors(lake, [(r[0], r[1]) for r in rows]), float(thr), "average")
        clusters = sorted((list(np.nonzero(labels == lab)[0]) for lab in np.unique(labels)), key=len,
                          reverse=True)
        parts = [[members[j] for j in c] for c in clusters[1:]]
    new_ids = []
    with lake.session() as s:
        for part in parts:
            g = FaceGroup(collection_id=col.id)
            s.add(g)
            s.flush()
            s.query(Face).filter(Face.id.in_(part)).update({"group_id": g.id}, synchronize_session=False)
            new_ids.append(g.id)
    return {"id": int(group_id), "new_groups": new_ids, "faces_moved": sum(len(p) for p in parts)}


def name_group(lake: Lake, collection: str, group_id: int, person: str, consent: str | None = None
               ) -> dict[str, Any]:
    """Turn an unknown-person group into an enrolled person (new or existing): identify finds them next."""
    col = lake.collection(collection)
    name = (person or "").strip()
    if not name:
        raise BadInput("a person needs a non-empty name")
    with lake.session() as s:
        g = _group(s, col.id, group_id)
        p = s.scalar(select(Person).where(Person.collection_id == col.id, Person.name == name))
        if p is None:
            p = Person(collection_id=col.id, name=name, consent=consent)
            s.add(p)
            s.flush()
        n = s.query(Face).filter(Face.group_id == g.id).update({"person_id": p.id, "group_id": None})
        s.delete(g)
        pid = p.id
        from visionlake.faces import audit

        audit.record(s, "enroll", col.name, [f"person:{pid}"], detail=f"{n} face(s) from group {group_id}")
    sync_index(lake, col.name)  # puts the person id on those vectors so identify can find them
    return {"person": name, "person_id": pid, "faces": n}


__all__ = [
    "average_linkage", "bcubed", "chinese_whispers", "cluster", "cluster_vectors", "dbscan_labels", "groups",
    "merge_groups", "name_group", "rename_group", "split_group",
]
