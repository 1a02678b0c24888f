"""``visionlake faces ...``: detect, verify, enroll, people, identify, cluster, groups, forget, audit.

Every command calls the Python API of the same name (:mod:`visionlake.faces.gallery`,
:mod:`visionlake.faces.cluster`). Exit codes: 0 ok, 2 bad input (no face, unreadable photo, too many
faces), 3 not found (unknown person, collection or group), 1 anything else. Enroll, identify,
people, cluster, groups and forget use the collection ``people`` unless ``-c/--collection`` names
another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from visionlake.cli.common import (
    DEFAULT_FACES_COLLECTION,
    FacesCollectionOption,
    JsonOption,
    LakeOption,
    OptionalCollectionOption,
    console,
    print_json,
)
from visionlake.errors import BadInput, NotFound

app = typer.Typer(no_args_is_help=True, help="Detect, verify, enroll, identify, cluster and forget faces.")

CollectionOption = FacesCollectionOption
FarOption = Annotated[
    float, typer.Option("--far", help="Operating point: false accept rate (1e-3 or 1e-4 calibrated).")
]
ThresholdOption = Annotated[
    float | None, typer.Option("--threshold", help="Cosine-similarity threshold (overrides --far).")
]


def _lake(lake: Path | None, create: bool = True) -> Any:
    """The lake, refused (exit 6, one line) when it holds encrypted faces and its key is missing or wrong."""
    from visionlake.keyring import check_key
    from visionlake.lake import Lake

    lk = Lake(lake, create=create)
    check_key(lk)
    return lk


def _pipeline(lake: Any = None, collection: str | None = None, pack: str | None = None) -> Any:
    """The pipeline of a collection's pack (licence checked), of ``--pack``, else the default pack.

    A collection that does not exist yet (first enroll) gets the default pack.
    """
    from visionlake.faces.collection_pack import pipeline_for, require_licence
    from visionlake.faces.gallery import get_pipeline

    if pack is not None:
        if lake is not None:
            require_licence(lake, pack)
        return get_pipeline(pack=pack)
    if lake is not None and collection is not None:
        try:
            return pipeline_for(lake, collection)
        except NotFound:
            pass
    return get_pipeline()


PackOption = Annotated[str | None, typer.Option(
    "--pack", help="Face pack (dlib, arcface-s); default: the collection's pack, else dlib.")]


def get_pack_pipeline(pack: str) -> Any:
    from visionlake.faces.gallery import get_pipeline

    return get_pipeline(pack=pack)


def _lakeless_pipeline(pack: str | None, accept_licence: str | None) -> Any:
    """A pack used outside a lake: a non-commercial one still needs ``--accept-licence non-commercial``."""
    from visionlake.faces.packs import NON_COMMERCIAL, pack_info

    if pack is None:
        return _pipeline()
    info = pack_info(pack)
    if not info.commercial_use and accept_licence != NON_COMMERCIAL:
        from visionlake.faces.collection_pack import LicenceNotAccepted

        raise LicenceNotAccepted(f"face pack {pack!r}: {info.licence}; pass --accept-licence {NON_COMMERCIAL} "
                                 f"(or record it in the lake: `visionlake faces use-pack {pack} "
                                 f"--accept-licence {NON_COMMERCIAL}`)")
    return get_pack_pipeline(pack)


def _check_far(far: float) -> None:
    if not 0.0 < far < 1.0:
        raise BadInput(f"--far must be a rate between 0 and 1 (for example 1e-3), not {far}")


@app.command("detect")
def detect_cmd(
    images: Annotated[list[Path], typer.Argument(help="Photos to look at.")],
    pack: PackOption = None,
    accept_licence: Annotated[str | None, typer.Option(
        "--accept-licence", help="Accept a non-commercial pack's licence for this command only.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Faces in each photo: box (left, top, right, bottom), 5 landmarks, detector score, quality 0..1."""
    from visionlake.faces.gallery import read_photo

    pipe = _lakeless_pipeline(pack, accept_licence)
    out = []
    for path in images:
        photo = read_photo(path)
        faces = pipe.detect(photo.image)
        out.append({
            "image": str(path), "width": photo.width, "height": photo.height,
            "faces": [{"box": [int(v) for v in f.box],
                       "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in f.landmarks],
                       "score": round(float(f.score), 4), "quality": round(float(f.quality), 3)} for f in faces],
        })
    if as_json:
        print_json({"images": out})
        return
    for item in out:
        console.print(f"[bold]{item['image']}[/] ({item['width']}x{item['height']}): {len(item['faces'])} face(s)")
        for i, f in enumerate(item["faces"]):
            console.print(f"  #{i} box={f['box']} quality={f['quality']} score={f['score']}")


@app.command("verify")
def verify_cmd(
    a: Annotated[Path, typer.Argument(help="First photo.")],
    b: Annotated[Path, typer.Argument(help="Second photo.")],
    far: FarOption = 1e-3,
    threshold: ThresholdOption = None,
    pack: PackOption = None,
    accept_licence: Annotated[str | None, typer.Option(
        "--accept-licence", help="Accept a non-commercial pack's licence for this command only.")] = None,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Same person or not: cosine similarity, distance, and the decision at the operating point.

    The call is written to the audit log of the lake when a lake exists at --lake (none is created).
    """
    from visionlake.faces.collection_pack import accepted
    from visionlake.faces.gallery import verify

    _check_far(far)
    try:
        lk = _lake(lake, create=False)
    except NotFound:
        lk = None
    ok_in_lake = lk is not None and pack is not None and accepted(lk, pack)
    pipe = _pipeline() if pack is None else (get_pack_pipeline(pack) if ok_in_lake
                                              else _lakeless_pipeline(pack, accept_licence))
    out = verify(a, b, far=far, threshold=threshold, lake=lk, pipeline=pipe)
    if as_json:
        print_json(out)
        return
    verdict = "[green]same person[/]" if out["same"] else "[yellow]different people[/]"
    console.print(f"{verdict}: similarity {out['similarity']} (threshold {out['threshold']}), "
                  f"distance {out['distance']}")


@app.command("enroll")
def enroll_cmd(
    images: Annotated[list[Path], typer.Argument(help="Photos of the person (one face each).")],
    person: Annotated[str, typer.Option("--person", "-p", help="The person's name.")],
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    consent: Annotated[str | None, typer.Option("--consent", help="Consent record (text) to keep.")] = None,
    largest: Annotated[bool, typer.Option("--largest", help="Use the largest face when a photo has several.")]
    = False,
    keep_photos: Annotated[bool, typer.Option("--keep-photos", help="Copy the photos into the lake.")] = False,
    jitters: Annotated[int, typer.Option(help="Perturbed copies averaged into each template (0-100; dlib's "
                                         "num_jitters): steadier templates, ~1 s per 30 photos more.")] = 10,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enroll a person from one or more photos (all checked before anything is stored)."""
    from visionlake.faces.gallery import enroll

    lk = _lake(lake)
    out = enroll(lk, collection, person, [str(p) for p in images], consent=consent, largest=largest,
                 keep_photos=keep_photos, pipeline=_pipeline(lk, collection), jitters=jitters)
    if as_json:
        print_json(out)
        return
    linked = out.get("faces_linked", 0)
    console.print(f"enrolled [bold]{out['person']}[/] in {out['collection']!r}: {len(out['face_ids'])} face(s) "
                  f"from {out['photos']} photo(s)"
                  + (f" ({linked} already in the lake, {out['faces_added']} new)" if linked else ""))


@app.command("people")
def people_cmd(collection: CollectionOption = DEFAULT_FACES_COLLECTION, lake: LakeOption = None,
               as_json: JsonOption = False) -> None:
    """Enrolled people with their number of faces and photos."""
    from visionlake.faces.gallery import people

    out = people(_lake(lake, create=False), collection)
    if as_json:
        print_json({"collection": collection, "people": out})
        return
    if not out:
        console.print(f"nobody is enrolled in {collection!r}")
    for p in out:
        console.print(f"{p['name']}: {p['faces']} face(s), {p['photos']} photo(s)"
                      + (" [dim](consent recorded)[/]" if p["consent"] else ""))


@app.command("identify")
def identify_cmd(
    image: Annotated[Path, typer.Argument(help="Photo with one or more faces.")],
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    top: Annotated[int, typer.Option("--top", "-k", help="Candidates per face.")] = 5,
    far: FarOption = 1e-3,
    threshold: ThresholdOption = None,
    keep_probe: Annotated[bool, typer.Option("--keep-probe", help="Store the probe photo in the lake.")] = False,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who is in the photo: per face, the best matching enrolled people, or 'unknown'."""
    from visionlake.faces.gallery import identify

    _check_far(far)
    lk = _lake(lake, create=False)
    out = identify(lk, collection, str(image), top=top, threshold=threshold, far=far,
                   keep_probe=keep_probe, pipeline=_pipeline(lk, collection))
    if as_json:
        print_json(out)
        return
    if "warning" in out:
        console.print(f"[yellow]{out['warning']}[/]")
    for i, f in enumerate(out["faces"]):
        who = f["identity"]
        line = f"face #{i} {f['box']}: [bold]{who}[/]"
        if f["matches"]:
            line += " (" + ", ".join(f"{m['person']} {m['score']}" for m in f["matches"]) + ")"
        elif f["best_score"] is not None:
            line += f" (best score {f['best_score']} < threshold {out['threshold']})"
        if "warning" in f:
            line += f" [yellow]{f['warning']}[/]"
        console.print(line)


@app.command("cluster")
def cluster_cmd(
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    threshold: ThresholdOption = None,
    method: Annotated[str, typer.Option("--method", help="auto, average or cw.")] = "auto",
    min_size: Annotated[int, typer.Option("--min-size", help="Smallest group to create.")] = 2,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Group faces of people not enrolled into unknown-person groups (new faces only; incremental)."""
    from visionlake.faces.cluster import cluster

    out = cluster(_lake(lake, create=False), collection, threshold=threshold, method=method, min_size=min_size)
    if as_json:
        print_json(out)
        return
    console.print(f"{out['new_faces']} new face(s): {out['joined_existing']} joined existing groups, "
                  f"{out['grouped_new']} formed {out['groups_created']} new group(s), {out['ungrouped']} alone, "
                  f"{out['matched_enrolled']} look like enrolled people; {out['groups']} group(s) in all")


@app.command("groups")
def groups_cmd(
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Unknown-person groups, largest first."""
    from visionlake.faces.cluster import groups

    out = groups(_lake(lake, create=False), collection)
    if as_json:
        print_json({"collection": collection, "groups": out})
        return
    if not out:
        console.print("no groups yet; run 'visionlake faces cluster'")
    for g in out:
        console.print(f"group {g['id']}{' ' + repr(g['label']) if g['label'] else ''}: {g['faces']} face(s)")


@app.command("rename-group")
def rename_group_cmd(
    group: Annotated[int, typer.Argument(help="Group id.")],
    label: Annotated[str, typer.Argument(help="New label.")],
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    lake: LakeOption = None,
) -> None:
    """Label a group (it stays unknown; use name-group to make it an enrolled person)."""
    from visionlake.faces.cluster import rename_group

    out = rename_group(_lake(lake, create=False), collection, group, label)
    console.print(f"group {out['id']} is now {out['label']!r}")


@app.command("merge-groups")
def merge_groups_cmd(
    groups: Annotated[list[int], typer.Argument(help="Group ids; all merge into the first.")],
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    lake: LakeOption = None,
) -> None:
    """Merge groups that are the same person."""
    from visionlake.faces.cluster import merge_groups

    out = merge_groups(_lake(lake, create=False), collection, groups)
    console.print(f"merged {out['merged']} into group {out['id']} ({out['faces_moved']} face(s) moved)")


@app.command("split-group")
def split_group_cmd(
    group: Annotated[int, typer.Argument(help="Group id.")],
    faces: Annotated[list[int] | None, typer.Option("--face", help="Face ids to move to a new group.")] = None,
    threshold: ThresholdOption = None,
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    lake: LakeOption = None,
) -> None:
    """Split a group: the given --face ids move to a new group, or it is re-clustered more strictly."""
    from visionlake.faces.cluster import split_group

    out = split_group(_lake(lake, create=False), collection, group, faces or None, threshold)
    console.print(f"group {out['id']}: {out['faces_moved']} face(s) moved to new group(s) {out['new_groups']}")


@app.command("name-group")
def name_group_cmd(
    group: Annotated[int, typer.Argument(help="Group id.")],
    person: Annotated[str, typer.Option("--person", "-p", help="Name of the person.")],
    consent: Annotated[str | None, typer.Option("--consent", help="Consent record (text).")] = None,
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    lake: LakeOption = None,
) -> None:
    """Make a group an enrolled person, so that identify recognises them."""
    from visionlake.faces.cluster import name_group

    out = name_group(_lake(lake, create=False), collection, group, person, consent)
    console.print(f"{out['faces']} face(s) of group {group} are now {out['person']!r}")


@app.command("forget")
def forget_cmd(
    person: Annotated[str, typer.Option("--person", "-p", help="Name of the person to erase.")],
    collection: CollectionOption = DEFAULT_FACES_COLLECTION,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase every trace of a person and print the verification that nothing is left."""
    from visionlake.faces.gallery import forget

    out = forget(_lake(lake, create=False), collection, person)
    if as_json:
        print_json(out)
    else:
        r = out["removed"]
        if out.get("resumed"):
            console.print("finished an erasure that an earlier run did not complete (crash or kill)")
        console.print(f"forgot [bold]{out['person']}[/] in {out['collection']!r}: {r['faces']} face(s), "
                      f"{r['vectors']} vector(s), {r['files']} file(s), {r['images']} photo record(s)")
        for c in out["checks"]:
            mark = "[green]ok[/]  " if c["ok"] else "[red]FAIL[/]"
            console.print(f"  {mark} {c['check']}" + ("" if c["ok"] else f": {c['found']}"))
    if not out["ok"]:
        raise typer.Exit(1)


@app.command("audit")
def audit_cmd(
    action: Annotated[str | None, typer.Option("--action", help="identify, verify, enroll or forget.")] = None,
    collection: OptionalCollectionOption = None,
    limit: Annotated[int, typer.Option("--limit", help="How many entries.")] = 50,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent audit log entries (who identified, verified, enrolled or forgot, when; no pixels)."""
    from visionlake.faces.gallery import audit_log

    out = audit_log(_lake(lake, create=False), action=action, collection=collection, limit=limit)
    if as_json:
        print_json({"entries": out})
        return
    for e in out:
        console.print(f"{e['at']} {e['actor']} {e['action']} {e['collection'] or '-'} {e['result_ids']} "
                      f"{e['detail'] or ''}")


@app.command("packs")
def packs_cmd(lake: LakeOption = None, as_json: JsonOption = False) -> None:
    """Face packs: embedding space, dimension, licence, where the models come from, acceptance here."""
    from visionlake.faces.collection_pack import accepted
    from visionlake.faces.packs import PACK_INFO

    try:
        lk = _lake(lake, create=False)
    except NotFound:
        lk = None
    out = [{"pack": i.pack, "space": i.space, "dim": i.dim, "licence": i.licence,
            "commercial_use": i.commercial_use, "source": i.source,
            "accepted_here": (accepted(lk, i.pack) if lk is not None else None)} for i in PACK_INFO.values()]
    if as_json:
        print_json({"packs": out})
        return
    for p in out:
        note = "" if p["commercial_use"] else (" [green](accepted in this lake)[/]" if p["accepted_here"]
                                               else " [yellow](needs --accept-licence non-commercial)[/]")
        console.print(f"[bold]{p['pack']}[/] {p['dim'] or '?'}-d: {p['licence']}{note}\n  {p['source']}")


@app.command("use-pack")
def use_pack_cmd(
    pack: Annotated[str, typer.Argument(help="Face pack: dlib or arcface-s.")],
    accept_licence: Annotated[str | None, typer.Option(
        "--accept-licence", help="Required for non-commercial packs: the word 'non-commercial'.")] = None,
    target: Annotated[str | None, typer.Option(
        "--collection", "-c", help="Also make this (empty or new) faces collection use the pack "
        "(default: none, only the licence is recorded).")] = None,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Accept a pack's licence in this lake (recorded with who and when), optionally for a collection."""
    collection = target
    from visionlake.faces.collection_pack import accept_licence as accept
    from visionlake.faces.collection_pack import set_collection_pack

    lk = _lake(lake)
    out: dict[str, Any] = {"licence": accept(lk, pack, accept_licence)}
    if collection is not None:
        try:
            lk.collection(collection)
        except NotFound:
            lk.create_collection(collection, "faces")
        out["collection"] = set_collection_pack(lk, collection, pack)
    if as_json:
        print_json(out)
        return
    lic = out["licence"]
    if lic.get("needs_acceptance"):
        console.print(f"accepted for this lake by {lic['accepted_by']} at {lic['accepted_at']}: {lic['terms']}")
    else:
        console.print(f"{pack}: {lic['licence']} (nothing to accept)")
    if collection is not None:
        console.print(f"collection {collection!r} uses {pack}")


@app.command("switch-pack")
def switch_pack_cmd(
    pack: Annotated[str, typer.Option("--pack", help="The pack to switch to (dlib, arcface-s).")],
    collection: CollectionOption = "people",
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-embed every face of a collection with another pack, keep identities, erase the old templates.

    Resumable: after a crash, run the same command again.
    """
    import sys

    from visionlake.cli.analyse import progress_bar, rate_advancer
    from visionlake.faces.switch import switch_pack

    lk = _lake(lake, create=False)
    bar = progress_bar(f"switch to {pack}", sys.stderr.isatty() and not as_json)
    with bar:
        task = bar.add_task("switch", total=None, rate=0.0)

        advance = rate_advancer(bar, task)

        out = switch_pack(lk, collection, pack, workers=workers, progress=advance,
                          on_total=lambda n: bar.update(task, total=n))
    if as_json:
        print_json(out)
    elif not out["changed"]:
        console.print(f"collection {collection!r} already uses {pack}")
    else:
        console.print(f"{collection!r}: {out['from']} -> {pack}, {out['analysed']} image(s) re-embedded, "
                      f"{out['missing']} missing source file(s), {out['index']['count']} face(s) indexed; "
                      f"{out['people_with_faces']} enrolled people kept their faces, "
                      f"{out['people_who_lost_faces']} lost some")
        for c in out["checks"]:
            console.print(("  [green]ok[/]   " if c["ok"] else "  [red]FAIL[/] ") + c["check"])
        for p in out["problems"][:20]:
            console.print(f"  [yellow]{p['status']}[/] image {p['image_id']}: {p['detail']}")
    if not out["ok"]:
        raise typer.Exit(1)
