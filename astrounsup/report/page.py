"""``report/index.html``: one static page per run, opened from ``file://``."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np

from astrounsup._atomic import atomic_directory
from astrounsup._config import merge_config
from astrounsup.catalog import id_positions
from astrounsup.catalog.grades import FORMULA_STARTS, GRADE_COLUMNS, GRADE_KINDS, run_id
from astrounsup.io import as_dataset
from astrounsup.latent import summarize_latents
from astrounsup.plotting import band_views, distinct_colours, rgb_planes
from astrounsup.report.thumbnails import THUMBNAIL_Q, THUMBNAIL_STRETCH, composite_thumbnails

__all__ = ["REPORT_DEFAULTS", "legacy_viewer_url", "write_report"]

#: Settings of :func:`write_report`.
REPORT_DEFAULTS = {
    "cluster_nearest": 6,  # cutouts nearest each cluster's centre
    "cluster_random": 3,  # and a random few of its other members
    "top": 24,  # lens candidates and anomalies shown
    "lookalikes_of": 3,  # top candidates and anomalies whose look-alikes are shown
    "lookalikes": 6,
    "map_neighbors": 15,  # UMAP
    "seed": 0,
}


def _asset(name):
    """The text of ``assets/<name>``: the page's style sheet, and the vetting panel and its
    script (keyboard grading of the cards, kept in the browser's localStorage, exported as
    CSV or ECSV, which :func:`astrounsup.catalog.read_grades` reads)."""
    return (Path(__file__).parent / "assets" / name).read_text(encoding="utf-8")


def legacy_viewer_url(ra, dec, *, zoom=16):
    """The Legacy Survey sky viewer at ``ra``, ``dec`` (degrees); a plain link, nothing is
    fetched.

    Examples
    --------
    >>> legacy_viewer_url(150.1, 2.2)
    'https://www.legacysurvey.org/viewer?ra=150.100000&dec=2.200000&layer=ls-dr10&zoom=16'
    """
    return (
        f"https://www.legacysurvey.org/viewer?ra={float(ra):.6f}&dec={float(dec):.6f}"
        f"&layer=ls-dr10&zoom={int(zoom)}"
    )


def _value(v):
    """A plain Python value of a table cell (units dropped, masked as None)."""
    if np.ma.is_masked(v):
        return None
    v = getattr(v, "value", v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _fmt(v, digits=3):
    v = _value(v)
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return html.escape(str(v))


def _probability(v):
    """A probability with the digits that tell it from 1: ``0.9987`` rather than ``1``
    (its distance from 1 to two significant digits), ``0.123`` below 0.995."""
    v = _value(v)
    if not isinstance(v, float):
        return v
    if v < 0.995:
        return f"{v:.3g}"
    rest = 1.0 - v
    if rest < 1e-9:
        return "> 0.999999999"
    digits = 1 - int(f"{rest:.1e}".split("e")[1])  # two significant digits of 1 - v
    return f"{v:.{digits}f}"


def _of(rank, n):
    """Ranks as ``"3 of 10000"``: where an object stands in the whole survey."""
    out = np.full(len(rank), None, dtype=object)
    for i, r in enumerate(rank):
        if _value(r) is not None:
            out[i] = f"{int(r)} of {n}"
    return out


def _joined(table, ids, columns):
    """``columns`` of ``table`` in the order of ``ids`` (by ``object_id``)."""
    if table is None:
        return {}

    rows = id_positions(table["object_id"], ids, where="a catalog")
    return {c: np.asarray(table[c])[rows] for c in columns if c in table.colnames}


def _palette(n):
    """``n`` distinct colours (hex): those of the paper figures
    (:func:`astrounsup.plotting.distinct_colours`) up to 60, else spread over Turbo."""
    from bokeh.palettes import Turbo256

    if n <= 60:
        return distinct_colours(n)
    return [Turbo256[int(i)] for i in np.linspace(0, 255, n)]


def _colours(values):
    """Hex colours of a column: categories (bool, strings, few integers) get distinct
    colours; numbers are coloured by their percentile rank on Viridis."""
    from bokeh.palettes import Viridis256

    v = np.asarray(values)
    categorical = v.dtype.kind in "bUSO" or (v.dtype.kind in "iu" and len(np.unique(v)) <= 64)
    if categorical:
        cats = sorted(np.unique(v.astype(str)).tolist(), key=lambda s: (len(s), s))
        pal = _palette(len(cats))
        lookup = dict(zip(cats, pal, strict=True))
        return [lookup[str(x)] for x in v], cats
    x = v.astype(np.float64)
    ok = np.isfinite(x)
    out = np.full(len(x), "#bbbbbb", dtype=object)
    if ok.any():
        from scipy.stats import rankdata

        r = (rankdata(x[ok]) - 1) / max(ok.sum() - 1, 1)
        out[ok] = [Viridis256[round(t * 255)] for t in r]
    return out.tolist(), None


#: Card lines shown only for the objects that have a value.
_SHOWN_WHEN_SET = ("flag", "known")


def _flags(table, constant):
    """Per object, what a person vetting it should know of its pixels (``None``: nothing):
    a band of one value everywhere, or bad pixels (the worst band's share; ranked last
    when too many)."""
    out = np.full(len(table), None, dtype=object)
    if "bad_fraction" in table.colnames:
        worst = np.asarray(table["bad_fraction"], dtype=np.float64).reshape(len(table), -1)
        worst = worst.max(1) if worst.size else np.zeros(len(table))
        flagged = np.zeros(len(table), bool)
        if "bad_pixel_flag" in table.colnames:
            flagged = np.asarray(table["bad_pixel_flag"], dtype=bool)
        for i in np.flatnonzero(worst > 0):  # a coverage gap or masked pixels
            last = ": ranked last" if flagged[i] else ""
            out[i] = f"bad pixels ({100 * worst[i]:.0f}% of a band){last}"
    for i in np.flatnonzero(constant):
        out[i] = "a band of one value (blank?): ranked last"
    return out


def _card(i, ids, ra, dec, cluster, extra, *, kind, grade_kind, files=None):
    """One gallery card: thumbnail, id, RA/Dec, cluster, scores, the sky-viewer link; its
    ``data-row`` names its pictures and ``data-file`` the files it was read from."""
    lines = [f"<b>{html.escape(ids[i])}</b>"]
    if ra is not None:
        lines.append(f"RA {float(ra[i]):.5f} Dec {float(dec[i]):+.5f}")
    if cluster is not None:
        lines.append(f"cluster {_fmt(cluster[i])}")
    lines += [f"{html.escape(name)} {_fmt(col[i])}" for name, col in extra.items()
              if name not in _SHOWN_WHEN_SET or _value(col[i]) is not None]  # fmt: skip
    link = ""
    if ra is not None:
        link = f'<a href="{legacy_viewer_url(ra[i], dec[i])}" target="_blank">sky viewer</a>'
    return (
        f'<div class="card" tabindex="0" data-id="{html.escape(ids[i])}" data-kind="{kind}" '
        f'data-grade-kind="{grade_kind}" data-row="{i}"'
        + (f' data-file="{html.escape(str(files[i]))}"' if files is not None else "")
        + f'><img src="thumbs/{i}.png" alt="{html.escape(ids[i])}" loading="lazy" '
        f'title="click to enlarge (or V)">'
        + "<br>".join(lines)
        + f'<br>{link} <span class="grade"></span></div>'
    )


def _gallery(title, rows, note, *, kind, ids, ra, dec, cluster, extra, anchor,
             grade_kind="lens", files=None, shown=None):  # fmt: skip
    """A titled section of cards; the rows are added to ``shown`` (whose cards need their
    per-band pictures)."""
    if shown is not None:
        shown.update(int(i) for i in rows)
    cards = "\n".join(_card(i, ids, ra, dec, cluster, extra, kind=kind, grade_kind=grade_kind,
                            files=files) for i in rows)  # fmt: skip
    return (
        f'<section id="{anchor}"><h2>{html.escape(title)}</h2>'
        f'<p class="note">{note}</p><div class="gallery" data-gallery="{anchor}" '
        f'data-count="{len(rows)}">{cards}</div></section>'
    )


def _write_band_views(folder, data, rows, *, zoom=3, gap=4):
    """``folder/<row>.png`` for each of ``rows``: its bands side by side, each alone in the
    colour rule's units and stretch (:func:`astrounsup.plotting.band_views`)."""
    from PIL import Image

    folder.mkdir()
    for start in range(0, len(rows), 128):
        batch = rows[start : start + 128]
        views = band_views(data.pixels(batch), bands=data.bands, zoom=zoom,
                           pixel_scale=data.pixel_scale)  # fmt: skip
        n, nb, h, w, _ = views.shape
        strip = np.full((n, h, nb * w + (nb - 1) * gap, 3), 255, np.uint8)
        for b in range(nb):
            strip[:, :, b * (w + gap) : b * (w + gap) + w] = views[:, b]
        for i, im in zip(batch, strip, strict=True):
            Image.fromarray(im).save(folder / f"{i}.png")


def _map(xy, ids, thumbs, columns, default):
    """The bokeh scatter of the 2-D map, with hover thumbnails and a colour selector."""
    from bokeh.embed import components
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, CustomJS, HoverTool, Select
    from bokeh.plotting import figure

    data = {"x": xy[:, 0], "y": xy[:, 1], "object_id": ids, "thumb": thumbs}
    shown = {}
    for name, values in columns.items():
        colours, _ = _colours(values)
        data[f"colour__{name}"] = colours
        shown[name] = [_fmt(v) for v in values]
    for name in ("cluster", "lens_score", "lens_rank", "anomaly_score", "anomaly_rank"):
        if name in shown:
            data[f"show__{name}"] = shown[name]
    data["colour"] = list(data[f"colour__{default}"])
    source = ColumnDataSource(data)
    fig = figure(width=760, height=600, tools="pan,wheel_zoom,box_zoom,reset,save",
                 active_scroll="wheel_zoom", title="UMAP of the latents",
                 x_axis_label="UMAP 1 (arbitrary units)",
                 y_axis_label="UMAP 2 (arbitrary units)")  # fmt: skip
    fig.scatter("x", "y", source=source, size=6, color="colour", alpha=0.8)
    rows = "".join(
        f"<div>{n.replace('_', ' ')}: @show__{n}</div>" for n in
        ("cluster", "lens_score", "lens_rank", "anomaly_score", "anomaly_rank")
        if f"show__{n}" in data
    )  # fmt: skip
    tooltip = (f'<div class="hover"><img src="@thumb" width="96" height="96">'
               f"<div><b>@object_id</b></div>{rows}</div>")  # fmt: skip
    fig.add_tools(HoverTool(tooltips=tooltip))
    select = Select(title="Colour by", value=default, options=list(columns))
    select.js_on_change("value", CustomJS(args={"source": source}, code="""
        const d = source.data;
        d['colour'] = Array.from(d['colour__' + cb_obj.value]);
        source.change.emit();
    """))  # fmt: skip
    return components(column(select, fig))


def write_report(out, store, latents, clusters, anomalies=None, *, summary=None, links=None,
                 config=None):  # fmt: skip
    """Write a static report folder for one run: ``out/index.html`` and its thumbnails.

    The latents are summarised by :func:`astrounsup.latent.summarize_latents` (the map,
    the members nearest each cluster's centre, the top of each ranking and their
    look-alikes) with the settings of ``config``. The page holds a run summary, an
    interactive 2-D map of the latents (UMAP; pan, zoom,
    hover shows the cutout, id, cluster and scores; colour by cluster, lens score,
    anomaly score or any scalar catalog column), galleries (each cluster: the cutouts
    nearest its centre and a random few, its size and labelled fractions; the top lens
    candidates; the top anomalies; look-alikes of the top few of each), and links to the
    catalogs and figures. Every card shows the id, RA/Dec, cluster, scores and ranks, and
    a link to the Legacy Survey sky viewer at its position. It works from ``file://``
    with no server and no internet (the map's JavaScript is inlined). The folder is
    assembled beside ``out`` and moved there when complete.

    Parameters
    ----------
    out : str or pathlib.Path
        The report folder (replaced when it exists).
    store : str, pathlib.Path or astrounsup.io.CutoutDataset
        The cutouts, one per row of ``latents``.
    latents : array_like of shape (n, d)
    clusters : astropy.table.Table
        The cluster catalog (:func:`astrounsup.pipeline.cluster_latents`): ``object_id``
        and ``cluster``, with labels ``lens_score``, ``lens_rank``, ``labeled``.
    anomalies : astropy.table.Table, optional
        The anomaly catalog (:func:`astrounsup.pipeline.score_anomalies`).
    summary : dict, optional
        Run facts shown at the top (name to value), e.g. data, bands, model, timings.
    links : dict of str to path, optional
        Catalogs and figures to link (name to file).
    config : dict, optional
        Over :data:`REPORT_DEFAULTS`.

    Returns
    -------
    pathlib.Path
        ``out/index.html``.

    Raises
    ------
    ValueError
        Latents of another length than the store, or catalogs of other objects.
    """
    from PIL import Image

    cfg = merge_config(REPORT_DEFAULTS, config, owner="report")
    data = as_dataset(store)
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or len(z) != len(data):
        msg = (
            f"write_report: latents must be (n, d) with one row per cutout of {store} "
            f"({len(data)}); got shape {z.shape}"
        )
        raise ValueError(msg)
    table = data.table
    ids = [str(v) for v in table["object_id"]]
    n = len(ids)
    ra = np.asarray(table["ra"], dtype=np.float64) if "ra" in table.colnames else None
    dec = np.asarray(table["dec"], dtype=np.float64) if "dec" in table.colnames else None
    cl = _joined(clusters, ids, clusters.colnames)
    an = _joined(anomalies, ids, anomalies.colnames) if anomalies is not None else {}
    cluster = cl.get("cluster")
    out = Path(out)
    with atomic_directory(out) as tmp:
        (tmp / "thumbs").mkdir()
        for start in range(0, n, 256):
            rows = list(range(start, min(n, start + 256)))
            images = data.pixels(rows)  # no data: NaN, drawn grey
            rgb = composite_thumbnails(images, bands=data.bands, pixel_scale=data.pixel_scale)
            for i, im in zip(rows, rgb, strict=True):
                Image.fromarray(im).save(tmp / "thumbs" / f"{i}.png")
        # Without labels the lens ranking is the arc score's (no training, no labels).
        by_arcs = "lens_rank" not in cl and "arc_rank" in cl
        lens_rank = cl.get("arc_rank") if by_arcs else cl.get("lens_rank")
        n_labeled = 0
        if lens_rank is not None and not by_arcs and "labeled" in cl:
            # The candidates to vet: the objects whose labels were used (the known lenses,
            # the labelled share) come after every other one.
            labeled = np.asarray(cl["labeled"], dtype=bool)
            n_labeled = int(labeled.sum())
            lens_rank = np.where(labeled, n + np.asarray(lens_rank), np.asarray(lens_rank))
        overview = summarize_latents(
            z, cluster=cluster, lens_rank=lens_rank,
            anomaly_rank=an.get("anomaly_rank"), map_neighbors=cfg["map_neighbors"],
            cluster_nearest=cfg["cluster_nearest"], cluster_random=cfg["cluster_random"],
            top=cfg["top"], lookalikes_of=cfg["lookalikes_of"], lookalikes=cfg["lookalikes"],
            seed=cfg["seed"],
        )  # fmt: skip
        xy = overview.map
        columns = {}
        if cluster is not None:
            columns["cluster"] = cluster
        for name in ("lens_candidate", "lens_score", "labeled"):
            if name in cl:
                columns[name] = cl[name]
        if "anomaly_score" in an:
            columns["anomaly_score"] = an["anomaly_score"]
        for name, values in cl.items():
            if (
                name not in columns
                and name not in ("object_id", "ra", "dec")
                and (np.asarray(values).ndim == 1)
            ):
                columns[name] = values
        rank = {"lens_rank": cl.get("lens_rank"), "anomaly_rank": an.get("anomaly_rank")}
        columns |= {k: v for k, v in rank.items() if v is not None}
        script, div = _map(xy, ids, [f"thumbs/{i}.png" for i in range(n)], columns,
                           "cluster" if "cluster" in columns else next(iter(columns)))  # fmt: skip
        sections = []
        nav = []
        card_cols = {}
        for name in ("lens_score", "lens_rank", *(("arc_score", "arc_rank") if by_arcs else ())):
            if name in cl:
                card_cols[name.replace("_", " ")] = cl[name]
        for name in ("anomaly_score", "anomaly_rank"):
            if name in an:
                card_cols[name.replace("_", " ")] = an[name]
        if "lens score" in card_cols:  # a calibrated probability: its digits near 1
            card_cols["lens score"] = [_probability(v) for v in card_cols["lens score"]]
        for name in ("lens rank", "arc rank", "anomaly rank"):
            if name in card_cols:
                card_cols[name] = _of(card_cols[name], n)
        if "labeled" in cl and np.asarray(cl["labeled"], dtype=bool).any():
            card_cols["known"] = np.where(np.asarray(cl["labeled"], dtype=bool),
                                          "its label ranked the others", None)  # fmt: skip
        flags = _flags(table, data.constant_flags())  # the thumbnails read every cutout
        if "coverage_gap" in an:  # the latents saw the gap filled: not their call
            for i in np.flatnonzero(np.asarray(an["coverage_gap"], dtype=bool)):
                if flags[i] is not None and not flags[i].endswith("ranked last"):
                    flags[i] += ": a coverage gap, scored by the pixel detectors only"
        if any(f is not None for f in flags):
            card_cols["flag"] = flags
        if "top_scorer" in an:  # the scorer that put the object highest
            card_cols["found by"] = np.where(np.asarray(an["top_scorer"]) == "", None,
                                             an["top_scorer"])  # fmt: skip
        files = np.asarray(table["file"]).astype(str) if "file" in table.colnames else None
        shown = set()  # the cards' rows: each gets its per-band pictures
        common = {"ids": ids, "ra": ra, "dec": dec, "cluster": cluster, "extra": card_cols,
                  "files": files, "shown": shown}  # fmt: skip
        named = None
        if "lens_cluster_fraction" in cl and clusters.meta.get("regime") == "labeled":
            threshold = float(clusters.meta.get("threshold", 0.5))
            named = np.nan_to_num(np.asarray(cl["lens_cluster_fraction"], float)) > threshold
        if cluster is not None:
            for c, (near, few) in overview.cluster_members.items():
                members = np.flatnonzero(cluster == c)
                note = f"{members.size} objects"
                if "lens_cluster_fraction" in cl:
                    note += f"; lens fraction of its labelled members {_fmt(cl['lens_cluster_fraction'][members[0]])}"  # noqa: E501
                if "labeled" in cl:
                    note += f"; {int(np.sum(cl['labeled'][members]))} labelled"
                if named is not None and named[members[0]]:
                    note += "; <b>named a lens cluster</b>"
                note += f". The {len(near)} nearest its centre, then {len(few)} at random."
                sections.append(_gallery(f"Cluster {c}", near + few, note, kind="cluster",
                                         anchor=f"cluster-{c}", **common))  # fmt: skip
            nav.append('<a href="#cluster-' + str(sorted(np.unique(cluster).tolist())[0])
                       + '">clusters</a>')  # fmt: skip
        lens_top, anomaly_top = overview.lens_top, overview.anomaly_top
        if "lens_rank" in cl:
            sections.append(_gallery(
                "Top lens candidates", lens_top,
                "By the per-object lens score (rank 1 first), among the objects whose labels "
                f"were not used ({n_labeled} labelled or known left out): the list to vet.",
                kind="lens", anchor="lenses", **common))  # fmt: skip
            nav.append('<a href="#lenses">lens candidates</a>')
        elif by_arcs:
            sections.append(_gallery(
                "Lens-like cutouts (no labels)", lens_top,
                "By the arc score (rank 1 first): blue light at one radius around a red "
                "centre, measured on the pixels with no labels and no training. Grade them "
                "and run again with the grades to rank by a score learnt from them.",
                kind="lens", anchor="lenses", **common))  # fmt: skip
            nav.append('<a href="#lenses">lens-like cutouts</a>')
        if "anomaly_rank" in an:
            sections.append(_gallery(
                "Top anomalies", anomaly_top, "By the combined anomaly score (rank 1 first).",
                kind="anomaly", anchor="anomalies", grade_kind="anomaly", **common))  # fmt: skip
            nav.append('<a href="#anomalies">anomalies</a>')
        chosen = lens_top[: cfg["lookalikes_of"]] + anomaly_top[: cfg["lookalikes_of"]]
        if chosen:
            for j, i in enumerate(chosen):
                nbrs = overview.lookalikes[i]
                of_anomaly = j >= len(lens_top[: cfg["lookalikes_of"]])
                sections.append(_gallery(
                    f"Look-alikes of {ids[i]}", [i, *nbrs],
                    "The object, then its nearest neighbours in the latents.",
                    kind="lookalike", anchor=f"like-{i}",
                    grade_kind="anomaly" if of_anomaly else "lens", **common))  # fmt: skip
            nav.append(f'<a href="#like-{chosen[0]}">look-alikes</a>')
        facts = dict(summary or {})
        facts.setdefault("objects", n)
        facts.setdefault("bands", ", ".join(data.bands))
        _write_band_views(tmp / "bands", data, sorted(shown))
        planes = [data.bands[p] for p in (rgb_planes(data.bands) or (0,)) if p is not None]
        facts["thumbnails"] = (
            f"asinh composite (Lupton et al. 2004) of {', '.join(planes)} as red, "
            f"{'green, blue' if len(planes) == 3 else 'blue' if len(planes) == 2 else 'grey'}"
            f", every band in one unit, the cutout's sky noise (colours keep the flux ratios); "
            f"stretch {THUMBNAIL_STRETCH:g} sigma, Q {THUMBNAIL_Q:g}; bar in arcsec; grey: no "
            "data. Click a card's picture (or press V) to enlarge it with each band alone"
        )
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v, 4)}</td></tr>"
                       for k, v in facts.items())  # fmt: skip
        link_items = "".join(
            f'<li><a href="{html.escape(os.path.relpath(Path(p), out))}">{html.escape(name)}'
            f"</a></li>" for name, p in (links or {}).items()
        )  # fmt: skip
        from bokeh.resources import INLINE

        # Grades are kept per set of objects, so a re-made report of the same cutouts
        # keeps them, and reports of other data (all file:// pages share one storage)
        # do not mix; the export names the set, so they are not folded into another.
        report_data = {"n_objects": n, "run_id": run_id(table), "grade_kinds": GRADE_KINDS,
                       "grade_columns": list(GRADE_COLUMNS),
                       "formula_starts": list(FORMULA_STARTS)}  # fmt: skip

        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>astrounsup report</title>
<style>
{_asset("report.css")}</style>
{INLINE.render()}
{script}
</head><body>
<h1>{html.escape(str(facts.get("title", "astrounsup run report")))}</h1>
<p>{" · ".join(nav)}</p>
{_asset("vetting.html")}
<h2>Run</h2><table class="summary">{rows}</table>
<h2>Latent map</h2>
<p class="note">UMAP of the latents; hover a point for its cutout; wheel to zoom, drag to pan.</p>
{div}
{"".join(sections)}
<h2>Catalogs and figures</h2><ul class="links">{link_items}</ul>
<div id="zoom" hidden><div class="zoom-box"><img id="zoom-rgb" alt="">
<img id="zoom-bands" alt=""><div id="zoom-text"></div>
<p class="note">Each band alone in the same stretch. Esc or a click closes; grading keys
still grade the card.</p></div></div>
<script id="report-data" type="application/json">{json.dumps(report_data)}</script>
<script>
{_asset("vetting.js")}</script>
</body></html>
"""
        (tmp / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"
