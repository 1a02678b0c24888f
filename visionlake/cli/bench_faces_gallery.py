"""``visionlake bench identify`` and ``bench cluster``: options and output of :mod:`visionlake.bench.faces_gallery`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionlake.bench.faces_gallery import DEFAULT_CACHE, run_cluster, run_identify, run_layers_synthetic
from visionlake.cli.common import err_console, print_json
from visionlake.config import shared_data_dir
from visionlake.errors import BadInput
from visionlake.index.faiss_index import KINDS


def parse_nprobes(text: str, option: str = "--nprobe-sweep") -> list[int]:
    """``"64,128,256"`` -> [64, 128, 256]; anything else is bad input (exit 2)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadInput(f"{option} takes comma-separated whole numbers, not {text!r}") from None
    if not values or min(values) < 1:
        raise BadInput(f"{option} needs numbers >= 1, got {text!r}")
    return values


def register(app: typer.Typer) -> None:
    """Add ``identify`` and ``cluster`` to the ``visionlake bench`` group."""

    @app.command("identify")
    def identify_cmd(
        data: Annotated[Path | None, typer.Option("--data", help="LFW folder (default ../shared/data/lfw).")] = None,
        distractors: Annotated[int, typer.Option("--distractors", help="Synthetic distractor vectors.")] = 0,
        cache: Annotated[Path, typer.Option("--cache", help="Embedding cache folder (bench only).")] = DEFAULT_CACHE,
        workers: Annotated[int, typer.Option("--workers", help="Processes for embedding.")] = 2,
        kind: Annotated[str, typer.Option("--kind", help="Index kind: auto, flat, ivf, ivfsq8, ivfsq8r, "
                                          "ivfpq.")] = "auto",
        nlist: Annotated[int | None, typer.Option("--nlist", help="IVF lists (default ~4 sqrt n).")] = None,
        nprobe: Annotated[int | None, typer.Option("--nprobe", help="IVF lists probed per query.")] = None,
        queries: Annotated[int, typer.Option("--queries", help="Single queries timed for latency.")] = 1000,
        gallery_jitters: Annotated[int, typer.Option("--gallery-jitters", help="Embed the gallery as "
                                                     "`faces enroll` does (its default is 10); 0 = plain.")] = 0,
        pack: Annotated[str, typer.Option("--pack", help="Face pack: dlib or arcface-s.")] = "dlib",
        layer_probes: Annotated[int, typer.Option("--layer-probes", help="Probes timed through the Gallery "
                                                  "object and the HTTP service (0 = skip).")] = 200,
        synthetic: Annotated[int, typer.Option("--synthetic", help="Skip LFW: time only the Gallery and service "
                                               "layers on N synthetic 128-d faces (bench api's gallery).")] = 0,
        nprobe_sweep: Annotated[str | None, typer.Option("--nprobe-sweep", help="Comma-separated nprobe values "
                                                         "searched on the one built index (key `sweep`): chosen on "
                                                         "the validation half of the probes, reported on the test "
                                                         "half.")] = None,
        rerank_sweep: Annotated[str | None, typer.Option("--rerank-sweep", help="Comma-separated re-rank pool "
                                                         "sizes (candidates per hit re-scored with fp16 vectors) "
                                                         "for ivfsq8r, ivfpq, pqfs; same split (key "
                                                         "`rerank_sweep`).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    ) -> None:
        """Rank-1 identification on LFW (gallery: first photo of each person with 2+ photos, plus the
        people with one photo; probes: their other photos) with N distractors drawn from a Gaussian
        fitted to the real embeddings; recall@1 of the index vs exact search; latency; build time; RSS;
        and per-probe latency through the Gallery object and the HTTP service (``through_layers``)."""
        if synthetic:
            print_json(run_layers_synthetic(synthetic, max(layer_probes, 1)))
            return
        root = data or shared_data_dir() / "lfw"
        sweep = parse_nprobes(nprobe_sweep) if nprobe_sweep else None
        rerank = parse_nprobes(rerank_sweep, "--rerank-sweep") if rerank_sweep else None
        if kind not in ("auto", *KINDS):
            raise BadInput(f"unknown index kind {kind!r}; choose auto, {', '.join(KINDS)}")
        out = run_identify(root, distractors, cache, pack=pack, workers=workers, kind=kind, nlist=nlist, nprobe=nprobe,
                           queries=queries, log=lambda m: err_console.print(m), gallery_jitters=gallery_jitters,
                           layer_probes=layer_probes, nprobe_sweep=sweep, rerank_sweep=rerank)
        print_json(out)

    @app.command("cluster")
    def cluster_cmd(
        data: Annotated[Path | None, typer.Option("--data", help="LFW folder (default ../shared/data/lfw).")] = None,
        cache: Annotated[Path, typer.Option("--cache", help="Embedding cache folder (bench only).")] = DEFAULT_CACHE,
        workers: Annotated[int, typer.Option("--workers", help="Processes for embedding.")] = 2,
        threshold: Annotated[float | None, typer.Option("--threshold", help="Cosine similarity cut.")] = None,
        method: Annotated[str, typer.Option("--method", help="auto, average or cw.")] = "auto",
        pack: Annotated[str, typer.Option("--pack", help="Face pack: dlib or arcface-s.")] = "dlib",
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    ) -> None:
        """Cluster every LFW face without labels; BCubed precision/recall/F against the true identities,
        beside DBSCAN (the Immich / PhotoPrism method) at the same distance and at its best eps."""
        root = data or shared_data_dir() / "lfw"
        out = run_cluster(root, cache, pack=pack, workers=workers, threshold=threshold, method=method,
                          log=lambda m: err_console.print(m))
        print_json(out)
