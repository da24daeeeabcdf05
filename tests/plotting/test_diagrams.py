"""Paper figures: the latent map's colours, legend order and marks; the loss curve's labels."""

import numpy as np
import pytest
from matplotlib.colors import to_hex

from astrounsup.plotting import latent_map_figure, loss_curve_figure


class TestLatentMapFigure:
    def test_known_points_are_starred_with_their_own_legend(self):
        rng = np.random.default_rng(2)
        xy = rng.normal(size=(200, 2))
        known = np.zeros(200, bool)
        known[[3, 50, 199]] = True
        fig = latent_map_figure(xy, groups=np.arange(200) % 5, known=known)
        ax = fig.axes[0]
        stars = [c for c in ax.collections if len(c.get_offsets()) == 3]
        assert len(stars) == 1
        np.testing.assert_allclose(stars[0].get_offsets(), xy[known])
        legends = [a for a in ax.get_children() if type(a).__name__ == "Legend"]
        texts = [t.get_text() for lg in legends for t in lg.get_texts()]
        assert "known lens (3)" in texts
        assert "0 (40)" in texts  # the groups' legend is kept
        with pytest.raises(ValueError, match=r"known must have one entry per point \(200\)"):
            latent_map_figure(xy, known=known[:10])

    def test_24_groups_distinct_colours_numeric_legend_marked_and_named(self):
        rng = np.random.default_rng(1)
        groups = np.arange(480) % 24
        xy = rng.normal(size=(480, 2)) + groups[:, None] * 3.0
        fig = latent_map_figure(xy, groups=groups, marked=[7, 12], marked_label="named lens",
                                axis_label="PC", axis_unit="arbitrary units")  # fmt: skip
        ax = fig.axes[0]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert [int(t.split()[0]) for t in legend] == list(range(24))
        assert legend[7] == "7 (20) named lens"
        assert legend[8] == "8 (20)"
        colours = {to_hex(c.get_facecolor()[0]) for c in ax.collections}
        assert len(colours) == 24
        texts = {t.get_text(): t for t in ax.texts}
        assert set(texts) == {str(g) for g in range(24)}
        boxed = {k for k, t in texts.items() if to_hex(t.get_bbox_patch().get_facecolor()) ==
                 to_hex("gold")}  # fmt: skip
        assert boxed == {"7", "12"}
        # Each name sits at its group's median.
        np.testing.assert_allclose(texts["5"].xy, np.median(xy[groups == 5], axis=0))
        assert ax.get_xlabel() == "PC 1 [arbitrary units]"
        assert ax.get_ylabel() == "PC 2 [arbitrary units]"

    def test_more_than_60_groups_change_marker(self):
        groups = np.arange(130) % 65
        fig = latent_map_figure(np.random.default_rng(0).normal(size=(130, 2)), groups=groups)
        styles = {(to_hex(c.get_facecolor()[0]), c.get_paths()[0].vertices.shape)
                  for c in fig.axes[0].collections}  # fmt: skip
        assert len(styles) == 65

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match=r"xy must have shape \(n, 2\); got \(5,\)"):
            latent_map_figure(np.zeros(5))
        with pytest.raises(ValueError, match=r"one entry per point \(5\); got \(4,\)"):
            latent_map_figure(np.zeros((5, 2)), groups=[0, 1, 2, 3])


class TestLossCurveFigure:
    def test_titled_with_the_model_and_labelled_with_units(self):
        h = {"step": [1, 2, 3], "loss": [3.0, 2.0, 1.5], "val_step": [3], "val_loss": [1.7]}
        fig = loss_curve_figure(h, title="simclr (SimCLR): 3 steps",
                                loss_label="NT-Xent contrastive loss [nats per view]")  # fmt: skip
        ax = fig.axes[0]
        assert ax.get_title() == "simclr (SimCLR): 3 steps"
        assert ax.get_xlabel() == "optimizer step [count]"
        assert ax.get_ylabel() == "NT-Xent contrastive loss [nats per view]"
        assert ax.get_yscale() == "log"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]
