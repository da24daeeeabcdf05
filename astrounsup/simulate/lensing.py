"""Strong gravitational lensing by a singular isothermal ellipsoid plus external shear.

Coordinates are angles in arcsec on the image plane. The singular isothermal ellipsoid (SIE)
has convergence

.. math:: \\kappa(x', y') = \\frac{\\theta_E}{2\\sqrt{q x'^2 + y'^2/q}}

in the frame ``(x', y')`` aligned with the major axis of the mass, so that at ``q = 1`` it is
the singular isothermal sphere with Einstein radius ``theta_e``. The deflection is the closed
form of Kormann, Schneider & Bartelmann (1994) as written by Keeton (2001). External shear
``(gamma1, gamma2)`` deflects by ``(gamma1 x + gamma2 y, gamma2 x - gamma1 y)``. The lens
equation maps an image-plane position ``theta`` to the source plane:
``beta = theta - alpha(theta)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "SIELens",
    "lens_magnification",
    "ray_trace",
    "shear_deflection",
    "sie_deflection",
    "solve_lens_equation",
]


def _as_tensor(a, like=None, dtype=None):
    if isinstance(a, torch.Tensor):
        return a if dtype is None else a.to(dtype)
    device = None if like is None else like.device
    if dtype is None:
        dtype = like.dtype if isinstance(like, torch.Tensor) else torch.float64
    return torch.as_tensor(np.asarray(a, dtype=np.float64), device=device).to(dtype)


def sie_deflection(x, y, *, theta_e, q, phi=0.0, x0=0.0, y0=0.0):
    """Deflection of a singular isothermal ellipsoid.

    Parameters
    ----------
    x, y : torch.Tensor or array_like
        Image-plane positions in arcsec; any shape, broadcast together.
    theta_e : float or torch.Tensor
        Einstein radius in arcsec, > 0 (broadcasts against ``x``).
    q : float or torch.Tensor
        Axis ratio of the mass, in (0, 1]; 1 is the singular isothermal sphere.
    phi : float or torch.Tensor, optional
        Position angle of the major axis, radians counter-clockwise from +x.
    x0, y0 : float or torch.Tensor, optional
        Centre of the lens, arcsec.

    Returns
    -------
    alpha_x, alpha_y : torch.Tensor
        Deflection angles in arcsec, shaped like the broadcast of the inputs.

    Examples
    --------
    At ``q = 1`` the deflection has magnitude ``theta_e`` everywhere:

    >>> ax, ay = sie_deflection([3.0, -0.2], [4.0, 0.1], theta_e=1.5, q=1.0)
    >>> torch.hypot(ax, ay).tolist()
    [1.5, 1.5]
    """
    x = _as_tensor(x)
    y = _as_tensor(y, like=x)
    theta_e, q, phi, x0, y0 = (_as_tensor(v, like=x) for v in (theta_e, q, phi, x0, y0))
    if bool(torch.any((q <= 0) | (q > 1))):
        msg = f"lens axis ratio q must be in (0, 1]; got {q.flatten()[:3].tolist()}"
        raise ValueError(msg)
    cos, sin = torch.cos(phi), torch.sin(phi)
    dx, dy = x - x0, y - y0
    xp = cos * dx + sin * dy
    yp = -sin * dx + cos * dy
    # s -> 0 is the spherical limit, where atan(s u)/s -> u; clamping s keeps that limit
    # exact without a branch. s is formed in float64 because 1 - q^2 cancels near q = 1.
    s = torch.sqrt(torch.clamp(1.0 - q.double() ** 2, min=1e-16)).to(x.dtype)
    psi = torch.sqrt(q * q * xp * xp + yp * yp)
    psi = torch.clamp(psi, min=torch.finfo(x.dtype).tiny)
    pref = theta_e * torch.sqrt(q) / s
    axp = pref * torch.atan(s * xp / psi)
    ayp = pref * torch.atanh(s * yp / psi)
    return cos * axp - sin * ayp, sin * axp + cos * ayp


def shear_deflection(x, y, *, gamma1, gamma2, x0=0.0, y0=0.0):
    """Deflection by an external shear centred on ``(x0, y0)``.

    Parameters
    ----------
    x, y : torch.Tensor or array_like
        Image-plane positions, arcsec.
    gamma1, gamma2 : float or torch.Tensor
        Shear components; ``gamma = hypot(gamma1, gamma2)`` and the shear angle is
        ``atan2(gamma2, gamma1) / 2``.
    x0, y0 : float or torch.Tensor, optional
        Expansion centre (the lens centre).

    Returns
    -------
    alpha_x, alpha_y : torch.Tensor
        Deflection in arcsec.
    """
    x = _as_tensor(x)
    y = _as_tensor(y, like=x)
    gamma1, gamma2, x0, y0 = (_as_tensor(v, like=x) for v in (gamma1, gamma2, x0, y0))
    dx, dy = x - x0, y - y0
    return gamma1 * dx + gamma2 * dy, gamma2 * dx - gamma1 * dy


@dataclass(frozen=True)
class SIELens:
    """An SIE with external shear: the lens model of the survey simulator.

    Attributes
    ----------
    theta_e : float
        Einstein radius, arcsec.
    q : float
        Axis ratio of the mass, (0, 1].
    phi : float
        Position angle of the mass, radians from +x.
    gamma1, gamma2 : float
        External shear.
    x0, y0 : float
        Lens centre, arcsec.
    """

    theta_e: float
    q: float = 1.0
    phi: float = 0.0
    gamma1: float = 0.0
    gamma2: float = 0.0
    x0: float = 0.0
    y0: float = 0.0

    def __post_init__(self):
        if not self.theta_e > 0:
            msg = f"theta_e must be > 0 arcsec; got {self.theta_e!r}"
            raise ValueError(msg)
        if not 0 < self.q <= 1:
            msg = f"q must be in (0, 1]; got {self.q!r}"
            raise ValueError(msg)

    def deflection(self, x, y):
        """Total deflection ``(alpha_x, alpha_y)`` at image-plane ``(x, y)``, arcsec."""
        ax, ay = sie_deflection(
            x, y, theta_e=self.theta_e, q=self.q, phi=self.phi, x0=self.x0, y0=self.y0
        )
        sx, sy = shear_deflection(
            x, y, gamma1=self.gamma1, gamma2=self.gamma2, x0=self.x0, y0=self.y0
        )
        return ax + sx, ay + sy


def ray_trace(x, y, *, theta_e, q, phi, gamma1, gamma2, x0, y0):
    """Map image-plane positions to the source plane, ``beta = theta - alpha(theta)``.

    Parameters broadcast like :func:`sie_deflection`; the survey simulator passes per-lens
    parameters of shape ``(C, 1, 1)`` against a grid of shape ``(1, H, W)``.

    Returns
    -------
    beta_x, beta_y : torch.Tensor
        Source-plane positions, arcsec.
    """
    x = _as_tensor(x)
    y = _as_tensor(y, like=x)
    ax, ay = sie_deflection(x, y, theta_e=theta_e, q=q, phi=phi, x0=x0, y0=y0)
    sx, sy = shear_deflection(x, y, gamma1=gamma1, gamma2=gamma2, x0=x0, y0=y0)
    return x - ax - sx, y - ay - sy


def _jacobian(lens, x, y, h):
    """Jacobian of the lens mapping by central differences, float64 arrays."""

    def beta(xx, yy):
        ax, ay = lens.deflection(xx, yy)
        return (xx - ax.numpy(), yy - ay.numpy())

    bxp, byp = beta(x + h, y)
    bxm, bym = beta(x - h, y)
    bxq, byq = beta(x, y + h)
    bxr, byr = beta(x, y - h)
    a11 = (bxp - bxm) / (2 * h)
    a21 = (byp - bym) / (2 * h)
    a12 = (bxq - bxr) / (2 * h)
    a22 = (byq - byr) / (2 * h)
    return a11, a12, a21, a22


def lens_magnification(lens, x, y):
    """Signed magnification ``1 / det(d beta / d theta)`` at image-plane positions.

    Parameters
    ----------
    lens : SIELens
    x, y : array_like
        Image-plane positions, arcsec.

    Returns
    -------
    numpy.ndarray
        Signed magnification (negative for saddle-point images).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a11, a12, a21, a22 = _jacobian(lens, x, y, 1e-6 * lens.theta_e)
    return 1.0 / (a11 * a22 - a12 * a21)


def solve_lens_equation(
    lens, source_x, source_y, *, search_radius=None, grid_size=400, tol=1e-10, max_iter=50
):
    """Find the image positions of a point source.

    The image plane within ``search_radius`` of the lens is tiled with triangles; every
    triangle whose image under the lens mapping contains the source yields a candidate,
    which Newton's method polishes until ``|beta(theta) - beta_s| < tol``. The singular
    centre of an isothermal lens carries no image (it is infinitely demagnified), so
    candidates that do not converge there are not images.

    Parameters
    ----------
    lens : SIELens
        The lens.
    source_x, source_y : float
        Source position, arcsec.
    search_radius : float, optional
        Half-width of the searched square; default ``3 * theta_e + |beta|``.
    grid_size : int, optional
        Cells per side of the search grid.
    tol : float, optional
        Convergence tolerance on the lens equation, arcsec.
    max_iter : int, optional
        Newton iterations per candidate.

    Returns
    -------
    numpy.ndarray of shape (k, 2)
        Image positions ``(x, y)`` in arcsec, sorted by decreasing ``|magnification|``.
        Images closer than a grid cell are resolved by a second, 20x finer search around
        each image found. A source exactly on a point caustic (the centre of a circular
        lens) is imaged into a ring, which comes back as many points on it.

    Examples
    --------
    A singular isothermal sphere images a source at ``beta < theta_e`` twice, at
    ``beta + theta_e`` and ``beta - theta_e`` along the source direction:

    >>> images = solve_lens_equation(SIELens(theta_e=1.0), 0.3, 0.0)
    >>> np.round(np.sort(images[:, 0]), 6).tolist()
    [-0.7, 1.3]
    """
    bs = np.array([source_x, source_y], dtype=np.float64)
    if search_radius is None:
        search_radius = 3.0 * lens.theta_e + float(np.hypot(*bs))
    cell = 2 * search_radius / grid_size
    # Offset by a fraction of a cell so no grid node falls exactly on the singular centre.
    edge = np.linspace(-search_radius, search_radius, grid_size + 1) + 1e-3 * cell
    images = _polish(
        lens,
        bs,
        _triangle_hits(lens, bs, edge + lens.x0, edge + lens.y0),
        tol=tol,
        max_iter=max_iter,
    )
    # Two images closer than a cell (a pair near the critical curve) can share one
    # triangle: search again, 20x finer, around every image found.
    local = np.linspace(-3 * cell, 3 * cell, 121) + 0.37e-3 * cell
    extra = [_triangle_hits(lens, bs, px + local, py + local) for px, py in images]
    if extra:
        images = _polish(lens, bs, np.concatenate([images, *extra]), tol=tol, max_iter=max_iter)
    if not len(images):
        return np.empty((0, 2))
    with np.errstate(divide="ignore"):  # on a critical curve the magnification is infinite
        mu = np.abs(lens_magnification(lens, images[:, 0], images[:, 1]))
    return images[np.argsort(-mu)]


def _triangle_hits(lens, bs, xs, ys):
    """Image-plane points of every grid triangle whose lensed image holds the source."""
    gx, gy = np.meshgrid(xs, ys)
    ax, ay = lens.deflection(gx, gy)
    bx, by = gx - ax.numpy(), gy - ay.numpy()

    def corners(a):
        return a[:-1, :-1], a[:-1, 1:], a[1:, :-1], a[1:, 1:]

    x00, x01, x10, x11 = corners(bx)
    y00, y01, y10, y11 = corners(by)
    g00, g01, g10, g11 = corners(gx)
    h00, h01, h10, h11 = corners(gy)
    found = []
    for (pa, qa, ra), (pb, qb, rb), (pc, qc, rc) in (
        ((x00, y00, (g00, h00)), (x01, y01, (g01, h01)), (x11, y11, (g11, h11))),
        ((x00, y00, (g00, h00)), (x11, y11, (g11, h11)), (x10, y10, (g10, h10))),
    ):
        det = (qb - qc) * (pa - pc) + (pc - pb) * (qa - qc)
        with np.errstate(divide="ignore", invalid="ignore"):
            l1 = ((qb - qc) * (bs[0] - pc) + (pc - pb) * (bs[1] - qc)) / det
            l2 = ((qc - qa) * (bs[0] - pc) + (pa - pc) * (bs[1] - qc)) / det
        l3 = 1 - l1 - l2
        hit = (l1 >= 0) & (l2 >= 0) & (l3 >= 0) & np.isfinite(det) & (det != 0)
        px = l1[hit] * ra[0][hit] + l2[hit] * rb[0][hit] + l3[hit] * rc[0][hit]
        py = l1[hit] * ra[1][hit] + l2[hit] * rb[1][hit] + l3[hit] * rc[1][hit]
        found.append(np.stack([px, py], axis=1))
    return np.concatenate(found, axis=0)


def _polish(lens, bs, candidates, *, tol, max_iter):
    """Newton-polish candidate images; keep the converged ones, one per image."""
    if not len(candidates):
        return np.empty((0, 2))
    x, y = candidates[:, 0].copy(), candidates[:, 1].copy()
    h = 1e-7 * lens.theta_e
    for _ in range(max_iter):
        axx, ayy = lens.deflection(x, y)
        rx = x - axx.numpy() - bs[0]
        ry = y - ayy.numpy() - bs[1]
        a11, a12, a21, a22 = _jacobian(lens, x, y, h)
        det = a11 * a22 - a12 * a21
        with np.errstate(divide="ignore", invalid="ignore"):
            step_x = (a22 * rx - a12 * ry) / det
            step_y = (-a21 * rx + a11 * ry) / det
        x = x - np.nan_to_num(step_x)
        y = y - np.nan_to_num(step_y)
    axx, ayy = lens.deflection(x, y)
    resid = np.hypot(x - axx.numpy() - bs[0], y - ayy.numpy() - bs[1])
    r_centre = np.hypot(x - lens.x0, y - lens.y0)
    good = (resid < tol) & (r_centre > 1e-6 * lens.theta_e)
    unique = []
    for p in np.stack([x[good], y[good]], axis=1):
        if all(np.hypot(*(p - u)) > 1e-6 * lens.theta_e for u in unique):
            unique.append(p)
    return np.array(unique).reshape(-1, 2)
