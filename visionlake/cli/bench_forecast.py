"""``visionlake bench forecast``: options and output of :func:`visionlake.bench.forecast.run_benchmark`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionlake.cli.common import JsonOption, console, print_json
from visionlake.trends.forecast import MODEL_NAMES, REFERENCE_MODELS


def register(app: typer.Typer) -> None:
    """Add ``forecast`` to the bench app."""

    @app.command("forecast")
    def forecast_cmd(
        data: Annotated[Path, typer.Option("--data", help="HERMES F1, StreetStyle-27K or fashion_products "
                                                          "folder, or a wide CSV (dates x series).")],
        out: Annotated[Path | None, typer.Option("--out", help="Folder for forecast CSVs.")] = None,
        train_end: Annotated[str | None, typer.Option("--train-end", help="Last training date.")] = None,
        horizon: Annotated[int | None, typer.Option("--horizon", min=1)] = None,
        season: Annotated[int | None, typer.Option("--season", min=1, help="Season length in rows "
                                                   "(default: the set's; 52 for a wide CSV).")] = None,
        cv_windows: Annotated[int, typer.Option("--cv-windows", min=1, max=20,
                                                help="Rolling origins inside the training part.")] = 3,
        cv_models: Annotated[str, typer.Option("--cv-models", help="Reference models scored in CV besides "
                                               "the default's pool.")] = ",".join(REFERENCE_MODELS),
        baselines: Annotated[str, typer.Option(
            "--baselines", help="Reference models also scored on the test part; 'none' to skip.")
        ] = "seasonal_naive",
        signal: Annotated[Path | None, typer.Option("--signal", help="Wide CSV of a weak signal.")] = None,
        model: Annotated[str, typer.Option("--model",
                                           help=f"Forecaster to score: {', '.join(MODEL_NAMES)}.")] = "default",
        json_out: JsonOption = False,
    ) -> None:
        """CV MASE of every candidate inside the training part, then test MASE and interval coverage."""
        def names(text: str) -> tuple[str, ...]:
            return tuple(b.strip() for b in text.split(",") if b.strip() and b.strip() != "none")

        from visionlake.bench.forecast import run_benchmark  # pandas/statsforecast: only when run

        res = run_benchmark(data, out, train_end, horizon, season, names(baselines), signal, model, cv_windows,
                            names(cv_models))
        if json_out:
            print_json(res)
            return
        console.print(f"[bold]{res['model']}[/] ({res['choice']}): CV MASE {res.get('cv_mase')}, test MASE "
                      f"{res['mase']}, coverage 80% {res.get('coverage_80')}, 95% {res.get('coverage_95')} "
                      f"({res['wall_s']} s, {res['n_series']} series, h={res['horizon']})")
        for row in res.get("cv_table", []):
            console.print(f"  {'*' if row['default'] else ' '} {row['candidate']}: CV MASE {row['cv_mase']}")
        for k, v in res["baselines"].items():
            console.print(f"  test {k}: MASE {v}")
