"""``visionlake audit verify``: check that the audit log of biometric operations was not altered."""

from __future__ import annotations

import typer

from visionlake.cli.common import JsonOption, LakeOption, console, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("verify")
def verify_cmd(lake: LakeOption = None, json_out: JsonOption = False) -> None:
    """Verify the audit log's hash chain: no row rewritten, deleted, inserted or cut off at the end.

    Exit 0 when the log checks out; 1 with the first broken row otherwise. Needs the lake key (the
    chain is keyed with a secret sealed by it).
    """
    from visionlake.faces.audit import verify_chain
    from visionlake.lake import Lake

    lk = Lake(lake, create=False)
    with lk.session() as s:
        out = verify_chain(s)
    if json_out:
        print_json(out)
    elif out["ok"]:
        console.print(f"audit log ok: {out['chained_rows']} chained row(s), {out['redacted_rows']} redacted by "
                      f"erasure, {out['legacy_rows']} written before the chain existed")
    else:
        console.print(f"[red]audit log broken at row {out['first_broken_id']}[/]: {out['problem']}")
    if not out["ok"]:
        raise typer.Exit(1)
