"""``visionlake fashion``: tag photos, name garment colours, train heads on your labels, search looks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionlake.cli.common import JsonOption, LakeOption, collection_option, console, print_json

app = typer.Typer(no_args_is_help=True)

ModelDirOption = Annotated[
    str | None,
    typer.Option("--model-dir", envvar="VISIONLAKE_FASHION_MODEL",
                 help="Local folder with the ONNX export (onnx/vision_model.onnx, onnx/text_model.onnx, "
                      "tokenizer.json), or a hub id. Default Marqo/marqo-fashionSigLIP."),
]
BackendOption = Annotated[str, typer.Option("--backend", help="onnx (default) or open_clip (needs the clip extra).")]


@app.command("colour")
def colour_cmd(images: Annotated[list[Path], typer.Argument(help="Photos.")], json_out: JsonOption = False) -> None:
    """Garment colours (no model needed; the person mask on photos of people where it is fetched)."""
    from visionlake.fashion.colour import analyse_colours
    from visionlake.fashion.person_mask import load_person_masker
    from visionlake.fashion.search import load_image

    results = []
    masker = load_person_masker()
    for p in images:
        res = analyse_colours(load_image(p), masker=masker).to_dict()
        res["path"] = str(p)
        results.append(res)
    if json_out:
        print_json(results)
        return
    for r in results:
        cols = ", ".join(f"{c['name']} {c['share']:.0%}" for c in r["colours"])
        console.print(f"{r['path']}: [bold]{r['family']}[/] ({cols})")


@app.command("tag")
def tag_cmd(
    images: Annotated[list[Path], typer.Argument(help="Photos.")],
    collection: Annotated[str | None, collection_option(
        "Use this collection's model and the heads trained on its labels.")] = None,
    model_dir: ModelDirOption = None,
    backend: BackendOption = "onnx",
    threshold: Annotated[float, typer.Option(help="Below this probability the answer is 'unsure'.")] = 0.4,
    batch_size: Annotated[int, typer.Option(help="Images per inference batch.")] = 16,
    threads: Annotated[int | None, typer.Option(help="Inference threads (default: all cores).")] = None,
    taxonomy: Annotated[Path | None, typer.Option(help="Your taxonomy YAML (extends the default).")] = None,
    lake: LakeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Tag photos: trained heads (with -c), zero-shot attributes (text-capable model) and colours.

    Each result says which model answered; an image-only backbone answers with heads and colour only.
    """
    from visionlake.fashion.colour import analyse_colours
    from visionlake.fashion.search import load_image
    from visionlake.fashion.tagger import FashionTagger, choose_model, load_heads, model_for_collection
    from visionlake.fashion.taxonomy import load_taxonomy
    from visionlake.lake import Lake

    pics = [load_image(p) for p in images]
    tax = load_taxonomy(taxonomy)
    heads = {}
    if collection is not None:
        lk = Lake(lake, create=False)
        model = model_for_collection(lk, collection, model_dir, backend, batch_size=batch_size, threads=threads)
        heads = load_heads(lk.collection_dir(collection) / "heads")
    else:
        model = choose_model(model_dir, backend, batch_size=batch_size, threads=threads)
    tagger = FashionTagger(model, tax, threshold=threshold, heads=heads)
    _emb, tags = tagger.tag(pics)
    note = None
    if not tagger.text_capable and not heads:
        note = (f"{tagger.model_name} has no text tower: no zero-shot tags; train heads on your labels "
                "(fashion train -c COLLECTION --label-column COLUMN) and tag with -c COLLECTION")
    if collection is not None:  # the collection's trained colour head picks the family, as at ingestion
        from visionlake.analysers.base import DecodedImage, WorkerContext
        from visionlake.fashion.analyser import ColourAnalyser

        ctx = WorkerContext(lk.root, collection, lk.collection_dir(collection))
        colours = [r["colour"] for r in ColourAnalyser().analyse(
            [DecodedImage(str(p), "", im) for p, im in zip(images, pics, strict=True)], ctx)]
    else:
        from visionlake.fashion.person_mask import load_person_masker

        masker = load_person_masker()
        colours = [analyse_colours(im, masker=masker).to_dict() | {"family_model": "model-free"} for im in pics]
    results = []
    for p, ts, colour in zip(images, tags, colours, strict=True):
        results.append({"path": str(p), "model": tagger.model_name, "tags": [t.to_dict() for t in ts],
                        "colour": colour})
    if json_out:
        print_json(results if note is None else [{**r, "note": note} for r in results])
        return
    for r in results:
        c = r["colour"] or {}
        console.print(f"[bold]{r['path']}[/]  model: {r['model']}  colour: {c.get('family', '-')} "
                      f"({c.get('family_model', 'failed')})")
        for t in r["tags"]:
            console.print(f"  {t['region']:5} {t['attribute']:12} {t['value']:16} {t['confidence']:.2f} "
                          f"({t['source']})")
    if note:
        console.print(f"[yellow]{note}[/]")


@app.command("train")
def train_cmd(
    collection: Annotated[str, collection_option("Collection with fashion embeddings.")],
    label_column: Annotated[str, typer.Option("--label-column", help="Metadata column with your labels.")],
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    lake: LakeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Fit a head on your labels; later tagging of the collection uses it for that column."""
    from visionlake.fashion.heads import train
    from visionlake.lake import Lake

    report = train(Lake(lake, create=False), collection, label_column, folds=folds)
    if json_out:
        print_json(report)
        return
    console.print(f"head for {label_column!r}: {report['classes']} classes, {report['samples']} images, "
                  f"cross-validated accuracy {report['cv_accuracy']:.1%} -> {report['path']}")


@app.command("train-colour")
def train_colour_cmd(
    collection: Annotated[str, collection_option("Collection whose images carry colour labels.")],
    label_column: Annotated[str, typer.Option("--label-column", help="Metadata column with colour names "
                                              "(e.g. baseColour: Black, Navy Blue, Off White).")],
    folds: Annotated[int, typer.Option(help="Cross-validation folds.", min=2, max=20)] = 5,
    backbone: Annotated[bool | None, typer.Option(
        "--backbone/--no-backbone", help="Use the image backbone's embedding as well (default: when its "
        "file is present).")] = None,
    lake: LakeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Learn the colour family from your colour labels; ingestion and `analyse` then use this head."""
    from visionlake.fashion.colour_training import train_colour_head
    from visionlake.lake import Lake

    report = train_colour_head(Lake(lake, create=False), collection, label_column, folds=folds, backbone=backbone)
    if json_out:
        print_json(report)
        return
    console.print(f"colour head ({report['model']}): {len(report['classes'])} families, {report['samples']} "
                  f"images, cross-validated accuracy {report['cv_accuracy']:.1%} -> {report['path']}\n"
                  f"re-run the colour analyser to apply it: visionlake analyse -c {collection} -a colour")


@app.command("upgrade")
def upgrade_cmd(
    collection: Annotated[str, collection_option("Fashion collection embedded with an older backbone layout.")],
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores; 0: in-process).")]
    = None,
    lake: LakeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Re-embed an older 'pooled' backbone collection with the 'rows' layout, rebuild its index and
    retrain its heads on the stored labels. Resumable: after a crash, run the same command again."""
    import sys

    from visionlake.cli.analyse import progress_bar, rate_advancer
    from visionlake.fashion.upgrade import upgrade_layout
    from visionlake.lake import Lake

    lk = Lake(lake, create=False)
    bar = progress_bar("upgrade", sys.stderr.isatty() and not json_out)
    with bar:
        task = bar.add_task("upgrade", total=None, rate=0.0)
        out = upgrade_layout(lk, collection, workers=workers, progress=rate_advancer(bar, task),
                             on_total=lambda n: bar.update(task, total=n))
    if json_out:
        print_json(out)
    elif not out["changed"]:
        console.print(out["message"])
    else:
        console.print(f"{collection!r}: {out['from']} -> {out['to']} layout ({out['dim']}-d, index "
                      f"{out['index_dim']}-d), {out['analysed']} image(s) re-embedded"
                      + (" (resumed)" if out["resumed"] else "") + f", {out['index'].get('count', 0)} indexed")
        if out["old_vectors_removed"]:
            console.print(f"  [yellow]{out['old_vectors_removed']} image(s) could not be read again and lost "
                          f"their old embedding[/]; `visionlake analyse -c {collection} -a tagger` embeds them "
                          "once their files are back")
        for h in out["heads"]:
            if h["status"] == "retrained":
                console.print(f"  head {h['label_column']!r} retrained on the new vectors: cross-validated "
                              f"accuracy {h['old_cv_accuracy']:.1%} -> {h['cv_accuracy']:.1%} ({h['samples']} images)")
            elif h["status"] == "removed":
                console.print(f"  [yellow]head {h['label_column']!r} removed[/]: it read {h['old_dim']}-d vectors "
                              f"and could not be retrained ({h['detail']})")
            elif h["status"] == "unreadable":
                console.print(f"  [yellow]head file {h['file']} unreadable[/], left as it is: {h['detail']}")
        if out["heads"]:
            console.print(f"  {out['head_tags']} head tag(s) written again")
        for c in out["checks"]:
            console.print(("  [green]ok[/]   " if c["ok"] else "  [red]FAIL[/] ") + c["check"])
        for p in out["problems"][:20]:
            console.print(f"  [yellow]{p['status']}[/] image {p['image_id']}: {p['detail']}")
    if not out.get("ok", True):
        raise typer.Exit(1)


@app.command("search")
def search_cmd(
    collection: Annotated[str, collection_option("Collection to search.")],
    image: Annotated[str | None, typer.Option("--image", help="Query photo (path) or an image id.")] = None,
    text: Annotated[str | None, typer.Option("--text", help='Query words, e.g. "red satin midi dress".')] = None,
    where: Annotated[list[str] | None, typer.Option("--where", help="Metadata filter key=value (repeat).")] = None,
    top: Annotated[int, typer.Option("--top", help="How many results.")] = 10,
    model_dir: ModelDirOption = None,
    backend: BackendOption = "onnx",
    lake: LakeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Photo -> similar looks, or words -> looks, with metadata filters inside the index query."""
    from visionlake.errors import BadInput
    from visionlake.fashion.search import parse_where, results_json, search
    from visionlake.fashion.tagger import model_for_collection
    from visionlake.lake import Lake

    if (image is None) == (text is None):
        raise BadInput("give exactly one of --image or --text")
    filters = parse_where(where)
    lk = Lake(lake, create=False)
    query_image: str | int | None = image
    model = None
    if image is not None and image.isdigit() and not Path(image).exists():
        query_image = int(image)
    else:
        model = model_for_collection(lk, collection, model_dir, backend)  # the space the collection lives in
    results = search(lk, collection, image=query_image, text=text, where=filters, top=top, model=model)
    if json_out:
        print_json({"collection": collection, "where": filters, "results": results_json(results)})
        return
    if not results:
        console.print("no results")
    for r in results:
        console.print(f"{r.score:.3f}  #{r.image_id}  {r.thumbnail or '-'}  {r.path}")
