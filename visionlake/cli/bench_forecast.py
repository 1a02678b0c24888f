"""``visionlake bench forecast``: options and output of :func:`visionlake.bench.forecast.run_benchmark`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionlake.cli.common import JsonOption, console, print_json
from visionlake.trends.forecast import MODEL_NAMES


def register(app: typer.Typer) -> None:
    """Add ``forecast`` to the bench app."""

    @app.command("forecast")
    def forecast_cmd(
        data: Annotated[Path, typer.Option("--data", help="HERMES F1 folder or a wide weekly CSV.")],
        out: Annotated[Path | None, typer.Option("--out", help="Folder for forecast CSVs.")] = None,
        train_end: Annotated[str | None, typer.Option("--train-end", help="Last training date.")] = None,
        horizon: Annotated[int | None, typer.Option("--horizon", min=1)] = None,
        season: Annotated[int, typer.Option("--season", min=1, help="Season length in rows.")] = 52,
        baselines: Annotated[str, typer.Option(
            "--baselines", help="Comma list of seasonal_naive,ets,theta,tbats; 'none' to skip.")
        ] = "seasonal_naive,ets,tbats",
        signal: Annotated[Path | None, typer.Option("--signal", help="Wide CSV of a weak signal.")] = None,
        model: Annotated[str, typer.Option("--model",
                                           help=f"Forecaster to score: {', '.join(MODEL_NAMES)}.")] = "default",
        json_out: JsonOption = False,
    ) -> None:
        """Mean MASE of the default forecaster and reference models on wide weekly series."""
        names = tuple(b.strip() for b in baselines.split(",") if b.strip() and b.strip() != "none")
        from visionlake.bench.forecast import run_benchmark  # imports pandas: only when this command runs

        res = run_benchmark(data, out, train_end, horizon, season, names, signal, model)
        if json_out:
            print_json(res)
            return
        console.print(f"[bold]{res['model']}[/]: MASE {res['mase']}  ({res['wall_s']} s, "
                      f"{res['n_series']} series, h={res['horizon']})")
        for k, v in res["baselines"].items():
            console.print(f"  {k}: MASE {v}")
