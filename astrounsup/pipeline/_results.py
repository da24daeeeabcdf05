"""What a step returns, and writing it: tables as catalogs, figures as PNG files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from astrounsup._atomic import default_mode, raise_named
from astrounsup._locks import output_lock, remove_stale_partials
from astrounsup.catalog import write_catalog
from astrounsup.plotting import save_figure

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
        """Write every table and figure into the folder ``out``, as one unit.

        Everything is first written into a temporary folder beside ``out`` and moved into
        ``out`` only once all of it is written (the folder itself, when ``out`` is new), so
        a failure (a full disk, a kill) leaves ``out`` as it was. The lock of ``out`` is
        held meanwhile: a second writer is refused.

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
        import os
        import shutil
        import tempfile

        out = Path(out)
        with output_lock(out):
            check_outputs(out, self.tables, fmt=fmt, overwrite=overwrite)
            remove_stale_partials(out)
            parent = Path(os.path.abspath(out)).parent
            parent.mkdir(parents=True, exist_ok=True)
            staging = Path(
                tempfile.mkdtemp(prefix=f".{Path(os.path.abspath(out)).name}.", suffix=".partial",
                                 dir=parent)
            )  # fmt: skip
            try:
                staged = {}
                with raise_named(out):
                    for name, table in self.tables.items():
                        staged[name] = write_catalog(table, output_path(staging, name, fmt))
                    for name, fig in self.figures.items():
                        key = f"{name}_figure" if name in staged else name
                        staged[key] = save_figure(fig, staging / f"{name}.png", dpi=self.dpi)
                paths = {key: out / path.name for key, path in staged.items()}
                if not out.exists():  # the whole folder appears at once
                    os.chmod(staging, default_mode(directory=True))
                    os.replace(staging, out)
                else:  # beside what the folder holds already: file by file
                    for key, path in staged.items():
                        os.replace(path, paths[key])
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return paths


def bad_pixel_flags_of(table):
    """The objects to rank last, as bools: ``bad_pixel_flag`` (too many bad pixels) or
    ``constant`` (a band of one value everywhere) set in ``table`` (False without them)."""
    import numpy as np

    flagged = np.zeros(len(table), dtype=bool)
    for column in ("bad_pixel_flag", "constant"):
        if column in table.colnames:
            flagged |= np.asarray(table[column], dtype=bool)
    return flagged


def output_path(out, name, fmt):
    """``out/<name>.<suffix of fmt>``."""
    if fmt not in FORMATS:
        msg = f"format must be one of {sorted(FORMATS)}; got {fmt!r}"
        raise ValueError(msg)
    return Path(out) / f"{name}{FORMATS[fmt]}"


def check_outputs(out, names, *, fmt="ecsv", overwrite=False):
    """Refuse, before any work, an ``out`` that is not a folder, and catalogs ``names``
    that exist in ``out`` unless ``overwrite``.

    Raises
    ------
    FileExistsError
        Naming the first existing file, or ``out`` when it is a file.
    """
    if Path(out).exists() and not Path(out).is_dir():
        msg = f"{out}: a file; the outputs are written into a folder: name one (or a new path)"
        raise FileExistsError(msg)
    if overwrite:
        return
    for name in names:
        path = output_path(out, name, fmt)
        if path.exists():
            msg = f"{path} exists; pass overwrite=True (--overwrite) to replace it"
            raise FileExistsError(msg)
