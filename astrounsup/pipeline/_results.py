"""What a step returns, and writing it: tables as catalogs, figures as PNG files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Catalog formats a step writes, by name -> file suffix.
FORMATS = {"ecsv": ".ecsv", "fits": ".fits", "vot": ".vot", "hdf5": ".h5"}


@dataclass
class StepResult:
    """The outputs of one step, in memory until :meth:`write`.

    Attributes
    ----------
    tables : dict of str to astropy.table.QTable
        Catalogs, each written as ``<name>.<format>``.
    figures : dict of str to matplotlib.figure.Figure
        Figures, each written as ``<name>.png``.
    summary : dict
        The step's numbers (counts, metrics, choices), for printing and reports.
    dpi : int
        Resolution of the written figures.
    """

    tables: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    dpi: int = 110

    def write(self, out, *, fmt="ecsv", overwrite=False):
        """Write every table and figure into the folder ``out``, each atomically.

        Parameters
        ----------
        out : str or pathlib.Path
        fmt : {"ecsv", "fits", "vot", "hdf5"}, optional
        overwrite : bool, optional
            Replace existing files; without it, an existing output is refused before
            anything is written.

        Returns
        -------
        dict of str to pathlib.Path
            Each output by name (a figure's name followed by ``"_figure"`` when a table has
            the same name).
        """
        from astrounsup.catalog import write_catalog
        from astrounsup.plotting import save_figure

        check_outputs(out, self.tables, fmt=fmt, overwrite=overwrite)
        paths = {}
        for name, table in self.tables.items():
            paths[name] = write_catalog(table, output_path(out, name, fmt), overwrite=overwrite)
        for name, fig in self.figures.items():
            key = f"{name}_figure" if name in paths else name
            paths[key] = save_figure(fig, Path(out) / f"{name}.png", dpi=self.dpi)
        return paths


def output_path(out, name, fmt):
    """``out/<name>.<suffix of fmt>``."""
    if fmt not in FORMATS:
        msg = f"format must be one of {sorted(FORMATS)}; got {fmt!r}"
        raise ValueError(msg)
    return Path(out) / f"{name}{FORMATS[fmt]}"


def check_outputs(out, names, *, fmt="ecsv", overwrite=False):
    """Refuse, before any work, catalogs ``names`` that exist in ``out`` unless
    ``overwrite``.

    Raises
    ------
    FileExistsError
        Naming the first existing file.
    """
    if overwrite:
        return
    for name in names:
        path = output_path(out, name, fmt)
        if path.exists():
            msg = f"{path} exists; pass overwrite=True (--overwrite) to replace it"
            raise FileExistsError(msg)
