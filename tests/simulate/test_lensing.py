import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from astrounsup.simulate import (
    SIELens,
    lens_magnification,
    ray_trace,
    shear_deflection,
    sie_deflection,
    solve_lens_equation,
)

RNG = np.random.default_rng(42)


def _numpy_deflection(x, y, **kw):
    ax, ay = sie_deflection(x, y, **kw)
    return ax.numpy(), ay.numpy()


class TestSIEDeflection:
    def test_sphere_deflects_by_theta_e_everywhere(self):
        x, y = RNG.uniform(-5, 5, (2, 2000))
        ax, ay = _numpy_deflection(x, y, theta_e=1.7, q=1.0, x0=0.3, y0=-0.2)
        np.testing.assert_allclose(np.hypot(ax, ay), 1.7, rtol=1e-12)
        # and radially, towards the lens centre's side of the ray
        np.testing.assert_allclose(np.arctan2(ay, ax), np.arctan2(y + 0.2, x - 0.3), atol=1e-9)

    @pytest.mark.parametrize(("q", "phi"), [(0.9, 0.0), (0.55, 0.7), (0.3, 2.5)])
    def test_divergence_is_twice_the_convergence(self, q, phi):
        """Poisson equation: div(alpha) = 2 kappa with the SIE convergence."""
        x, y = RNG.uniform(-3, 3, (2, 500))
        h = 1e-6
        kw = {"theta_e": 1.3, "q": q, "phi": phi}
        div = (
            _numpy_deflection(x + h, y, **kw)[0]
            - _numpy_deflection(x - h, y, **kw)[0]
            + _numpy_deflection(x, y + h, **kw)[1]
            - _numpy_deflection(x, y - h, **kw)[1]
        ) / (2 * h)
        c, s = np.cos(phi), np.sin(phi)
        xp, yp = c * x + s * y, -s * x + c * y
        kappa = 1.3 / (2 * np.sqrt(q * xp**2 + yp**2 / q))
        np.testing.assert_allclose(div, 2 * kappa, rtol=1e-5)

    def test_curl_free(self):
        x, y = RNG.uniform(-3, 3, (2, 500))
        h = 1e-6
        kw = {"theta_e": 1.0, "q": 0.6, "phi": 1.0}
        dax_dy = _numpy_deflection(x, y + h, **kw)[0] - _numpy_deflection(x, y - h, **kw)[0]
        day_dx = _numpy_deflection(x + h, y, **kw)[1] - _numpy_deflection(x - h, y, **kw)[1]
        np.testing.assert_allclose(dax_dy / (2 * h), day_dx / (2 * h), atol=1e-6)

    def test_continuous_at_sphere_limit(self):
        x, y = RNG.uniform(-2, 2, (2, 100))
        a1 = _numpy_deflection(x, y, theta_e=1.0, q=1.0)
        a2 = _numpy_deflection(x, y, theta_e=1.0, q=1.0 - 1e-7)
        np.testing.assert_allclose(a1, a2, atol=1e-6)

    def test_float32_sphere_limit_is_accurate(self):
        x = torch.tensor([1.0, -0.4], dtype=torch.float32)
        y = torch.tensor([0.5, 2.0], dtype=torch.float32)
        ax, ay = sie_deflection(x, y, theta_e=1.2, q=0.99999)
        np.testing.assert_allclose(torch.hypot(ax, ay).numpy(), 1.2, rtol=1e-4)

    def test_bad_axis_ratio(self):
        with pytest.raises(ValueError, match=r"lens axis ratio q must be in \(0, 1\]"):
            sie_deflection([0.0], [1.0], theta_e=1.0, q=1.5)


class TestShear:
    def test_formula(self):
        ax, ay = shear_deflection(np.array([2.0]), np.array([1.0]), gamma1=0.1, gamma2=0.05)
        np.testing.assert_allclose([ax.item(), ay.item()], [0.1 * 2 + 0.05, 0.05 * 2 - 0.1])


class TestLensEquation:
    @pytest.mark.parametrize("beta", [0.1, 0.45, 0.9])
    def test_sis_images_are_analytic(self, beta):
        lens = SIELens(theta_e=1.4)
        ang = 0.6
        images = solve_lens_equation(lens, beta * np.cos(ang), beta * np.sin(ang))
        radii = np.sort(np.hypot(images[:, 0], images[:, 1]))
        np.testing.assert_allclose(radii, [1.4 - beta, 1.4 + beta], rtol=1e-8)
        mu = lens_magnification(lens, images[:, 0], images[:, 1])
        r = np.hypot(images[:, 0], images[:, 1])
        np.testing.assert_allclose(mu, r / (r - 1.4), rtol=1e-5)

    def test_sis_outside_einstein_radius_is_single(self):
        images = solve_lens_equation(SIELens(theta_e=1.0), 1.3, 0.0)
        assert images.shape == (1, 2)
        np.testing.assert_allclose(images[0], [2.3, 0.0], atol=1e-8)

    @pytest.mark.parametrize("source", [(0.03, 0.02), (0.2, -0.1), (0.6, 0.4)])
    def test_images_satisfy_lens_equation(self, source):
        lens = SIELens(theta_e=1.2, q=0.6, phi=0.5, gamma1=0.04, gamma2=-0.03, x0=0.1, y0=0.05)
        images = solve_lens_equation(lens, *source)
        assert len(images) in (2, 4)
        bx, by = ray_trace(
            images[:, 0],
            images[:, 1],
            theta_e=1.2,
            q=0.6,
            phi=0.5,
            gamma1=0.04,
            gamma2=-0.03,
            x0=0.1,
            y0=0.05,
        )
        np.testing.assert_allclose(bx.numpy(), source[0], atol=1e-9)
        np.testing.assert_allclose(by.numpy(), source[1], atol=1e-9)

    def test_source_near_centre_of_elliptical_lens_gives_quad(self):
        lens = SIELens(theta_e=1.0, q=0.6)
        assert len(solve_lens_equation(lens, 0.02, 0.01)) == 4

    def test_bad_lens(self):
        with pytest.raises(ValueError, match="theta_e must be > 0"):
            SIELens(theta_e=0.0)
        with pytest.raises(ValueError, match=r"q must be in \(0, 1\]"):
            SIELens(theta_e=1.0, q=0.0)


lens_params = st.fixed_dictionaries(
    {
        "theta_e": st.floats(0.8, 2.5),
        "q": st.floats(0.45, 1.0),
        "phi": st.floats(0.0, np.pi),
        "gamma1": st.floats(-0.1, 0.1),
        "gamma2": st.floats(-0.1, 0.1),
    }
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True)
@given(params=lens_params, r=st.floats(0.0, 1.2), ang=st.floats(0.0, 2 * np.pi))
def test_every_solved_image_satisfies_the_lens_equation(params, r, ang):
    """Property: for any simulator-range lens and source, all images found map back."""
    lens = SIELens(**params)
    source = (r * params["theta_e"] * np.cos(ang), r * params["theta_e"] * np.sin(ang))
    images = solve_lens_equation(lens, *source, grid_size=200)
    assert len(images) >= 1
    bx, by = ray_trace(images[:, 0], images[:, 1], x0=0.0, y0=0.0, **params)
    np.testing.assert_allclose(bx.numpy(), source[0], atol=1e-8)
    np.testing.assert_allclose(by.numpy(), source[1], atol=1e-8)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(params=lens_params, r=st.floats(0.01, 0.4))
def test_sources_near_the_centre_are_multiply_imaged(params, r):
    """The simulator's sources sit well inside the caustics of its lenses: 2 to 4 images
    (3 for a naked cusp); the singular centre never holds one. (A source exactly at the
    centre of a circular lens is an Einstein ring, not a set of images.)"""
    lens = SIELens(**params)
    images = solve_lens_equation(lens, r * params["theta_e"], 0.0, grid_size=150)
    assert 2 <= len(images) <= 4
