# SPDX-License-Identifier: GPL-3.0-or-later
"""A small numpy rasterizer: a mesh seen from the front, shaded, with a triangle-id buffer.

The face landmarker (``core.landmarks``) reads a picture of the head, and what it finds
must come back to the surface: so the render keeps, for every pixel, the triangle seen
there, and :meth:`Render.surface_points` turns image positions back into points on the mesh.

The camera is orthographic and looks along +Y (a head in Blender's convention faces -Y, so
this is the front view), Z up: image x grows with +X (the character's left is on the
image's right, as when facing someone), image y grows downward with -Z. Pixel (i, j) has
its centre at (i + 0.5, j + 0.5).

Rasterization is vectorized over triangles: each triangle's bounding box of pixel centres
is enumerated in buckets of equal (power-of-two) size, the centres inside it are kept by
their barycentric coordinates, and the z-buffer keeps the nearest one per pixel (one sort).
No back faces are culled: the winding of an artist's mesh is not to be trusted, and the
z-buffer hides the back anyway. Shading is Lambert with vertex normals interpolated per
pixel, two-sided (a flipped normal shades the same), plus an ambient term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .topology import as_faces, as_verts, vertex_normals

# Light from the viewer's upper left, as in most portraits: the nose and brows cast the
# gradients a face detector trained on photographs looks for.
LIGHT = np.array([-0.35, -0.8, 0.5])
AMBIENT = 0.2
ALBEDO = np.array([0.86, 0.70, 0.60])     # a light skin tone (the landmarker was trained on photographs)
BACKGROUND = (0, 0, 0)


@dataclass
class Render:
    """A front view: ``image`` (H, W, 3) uint8 RGB, ``triangle`` (H, W) int64 face index
    seen at each pixel (-1 where the background is), ``bary`` (H, W, 3) float32 its
    barycentric coordinates, ``depth`` (H, W) world y (inf on the background).

    ``origin`` (x, z) is the world position of the image's top-left corner and ``pixel``
    the world size of one pixel: x = origin_x + u * pixel, z = origin_z - v * pixel.
    """

    image: np.ndarray
    triangle: np.ndarray
    bary: np.ndarray
    depth: np.ndarray
    origin: np.ndarray
    pixel: float
    verts: np.ndarray
    faces: np.ndarray

    def to_image(self, points) -> np.ndarray:
        """(N, 2) image positions (pixels) of world points (N, 3)."""
        p = np.asarray(points, np.float64)
        return np.c_[(p[:, 0] - self.origin[0]) / self.pixel, (self.origin[1] - p[:, 2]) / self.pixel]

    def surface_points(self, uv, reach: int = 6, near: int = 2, jump: float = 0.1,
                       expected_depth=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image positions (N, 2) back onto the mesh: ``(points (N,3), face (N,), bary (N,3))``.

        The triangle is the one drawn at the nearest covered pixel within ``reach`` pixels
        (a landmark on a hole's rim, an eye corner beside an open socket, may fall just
        inside the hole), leaving out pixels deeper than ``jump`` picture widths behind the
        nearest surface within ``near`` pixels (through an open socket the render sees the
        inside of the skull, which is no eye corner). The point is where the viewing ray
        through the exact position meets that triangle, clamped to it. Positions with
        nothing within reach get face -1 and NaN points.

        ``expected_depth`` (N,), when known (the landmarker's own depth estimate), replaces
        the nearest surface as the reference: only pixels within ``jump`` picture widths of
        it count (a landmark deep inside an open eye hole finds the rim, not the skull)."""
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        h, w = self.triangle.shape
        dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
        dx, dy = dx.ravel(), dy.ravel()
        i = np.floor(uv[:, 0]).astype(np.int64)[:, None] + dx[None]
        j = np.floor(uv[:, 1]).astype(np.int64)[:, None] + dy[None]
        inside = (i >= 0) & (i < w) & (j >= 0) & (j < h)
        ic, jc = np.clip(i, 0, w - 1), np.clip(j, 0, h - 1)
        hit = np.where(inside, self.triangle[jc, ic], -1)
        depth = np.where(hit >= 0, self.depth[jc, ic], np.inf)
        close = (np.abs(dx) <= near) & (np.abs(dy) <= near)
        tol = jump * self.pixel * w
        if expected_depth is not None:
            ok_hit = (hit >= 0) & (np.abs(depth - np.asarray(expected_depth, np.float64)[:, None]) <= tol)
        else:
            front = np.where(close[None], depth, np.inf).min(1, keepdims=True)
            front = np.where(np.isfinite(front), front, depth.min(1, keepdims=True))
            ok_hit = (hit >= 0) & (depth <= front + tol)
        dist = (i + 0.5 - uv[:, :1]) ** 2 + (j + 0.5 - uv[:, 1:]) ** 2
        best = np.where(ok_hit, dist, np.inf).argmin(1)
        rows = np.arange(len(uv))
        face = np.where(ok_hit[rows, best], hit[rows, best], -1)
        points = np.full((len(uv), 3), np.nan)
        bary = np.zeros((len(uv), 3))
        ok = face >= 0
        if ok.any():
            corners = self.to_image(self.verts[self.faces[face[ok]]].reshape(-1, 3)).reshape(-1, 3, 2)
            b = _barycentric(corners, uv[ok])
            b = np.clip(b, 0.0, None)
            b /= np.maximum(b.sum(1, keepdims=True), 1e-12)
            bary[ok] = b
            points[ok] = np.einsum("nk,nkc->nc", b, self.verts[self.faces[face[ok]]])
        return points, face, bary


def _barycentric(corners: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(N, 3) barycentric coordinates of 2-D points p (N, 2) in triangles corners (N, 3, 2)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) > 1e-300, den, 1e-300)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return np.c_[1.0 - l1 - l2, l1, l2]


def rasterize(uv: np.ndarray, depth: np.ndarray, faces: np.ndarray, height: int, width: int):
    """Z-buffer of triangles given by per-vertex image positions ``uv`` (N, 2) and depths
    (N,) (smaller is nearer): ``(triangle (H,W) int64, bary (H,W,3) float32, depth (H,W))``."""
    u = uv[:, 0].astype(np.float32)[faces]                               # (F,3)
    v = uv[:, 1].astype(np.float32)[faces]
    x0 = np.ceil(u.min(1) - 0.5)
    x1 = np.floor(u.max(1) - 0.5)
    y0 = np.ceil(v.min(1) - 0.5)
    y1 = np.floor(v.max(1) - 0.5)
    # Only triangles that hold a pixel centre inside the picture go on (on a dense mesh
    # most hold none, in a close-up most lie outside).
    live = np.flatnonzero((x1 >= np.maximum(x0, 0)) & (y1 >= np.maximum(y0, 0)) & (x0 <= width - 1)
                          & (y0 <= height - 1) & (x1 >= x0) & (y1 >= y0))
    faces = faces[live]
    tri = np.stack([u[live], v[live]], axis=-1).astype(np.float64)       # (L,3,2)
    x0 = np.clip(x0[live], 0, width - 1).astype(np.int64)
    x1 = np.clip(x1[live], 0, width - 1).astype(np.int64)
    y0 = np.clip(y0[live], 0, height - 1).astype(np.int64)
    y1 = np.clip(y1[live], 0, height - 1).astype(np.int64)
    span = np.maximum(x1 - x0, y1 - y0) + 1
    # Buckets of triangles whose pixel box fits in s x s, s a power of two.
    level = np.ceil(np.log2(np.maximum(span, 1))).astype(np.int64)
    pix_all, z_all, f_all, b_all = [], [], [], []
    for lv in np.unique(level):
        ids = np.flatnonzero(level == lv)
        s = 1 << int(lv)
        oy, ox = np.divmod(np.arange(s * s), s)
        # Bounded memory: at most ~4M candidate pixels per chunk.
        step = max(1, 4_000_000 // (s * s))
        for start in range(0, len(ids), step):
            f = ids[start:start + step]
            px = x0[f, None] + ox[None]
            py = y0[f, None] + oy[None]
            inside = (px <= x1[f, None]) & (py <= y1[f, None])
            rows, cols = np.nonzero(inside)
            fi = f[rows]
            px, py = px[rows, cols], py[rows, cols]
            b = _barycentric(tri[fi], np.c_[px + 0.5, py + 0.5])
            hit = (b >= -1e-9).all(1)
            fi, px, py, b = fi[hit], px[hit], py[hit], b[hit]
            pix_all.append(py * width + px)
            z_all.append((b * depth[faces[fi]]).sum(1))
            f_all.append(live[fi])
            b_all.append(b)
    triangle = np.full(height * width, -1, np.int64)
    bary = np.zeros((height * width, 3), np.float32)
    zbuf = np.full(height * width, np.inf)
    if pix_all:
        pix, z = np.concatenate(pix_all), np.concatenate(z_all)
        # One sort on pixel + depth scaled into [0, 0.5): by pixel, nearest first (half
        # the cost of a two-key lexsort; float64 keeps depth steps of ~1e-11 of the range).
        lo, span_z = float(z.min()), float(np.ptp(z)) or 1.0
        order = np.argsort(pix + (z - lo) * (0.49 / span_z))
        first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]]
        triangle[pix[first]] = np.concatenate(f_all)[first]
        bary[pix[first]] = np.concatenate(b_all)[first]
        zbuf[pix[first]] = z[first]
    return triangle.reshape(height, width), bary.reshape(height, width, 3), zbuf.reshape(height, width)


def render_front(verts, faces, size: int = 256, box=None, margin: float = 0.05, normals=None) -> Render:
    """Shaded front view of a mesh (Z up, facing -Y), ``size`` x ``size`` pixels.

    ``box`` ((x_min, z_min), (x_max, z_max)) is the world rectangle to frame (default: the
    mesh's bounding box); the square picture covers it with ``margin`` of its size around.
    ``normals`` (N, 3) are the vertex normals when the caller has them already."""
    v = as_verts(verts).astype(np.float64)
    f = as_faces(faces).astype(np.int64)
    if box is None:
        used = v[np.unique(f)] if len(f) else v
        lo, hi = used[:, [0, 2]].min(0), used[:, [0, 2]].max(0)
    else:
        lo, hi = np.asarray(box[0], np.float64), np.asarray(box[1], np.float64)
    side = float(max(hi - lo)) * (1.0 + 2.0 * margin)
    side = side if side > 0 else 1.0
    centre = 0.5 * (lo + hi)
    pixel = side / size
    origin = np.array([centre[0] - side / 2, centre[1] + side / 2])
    uv = np.c_[(v[:, 0] - origin[0]) / pixel, (origin[1] - v[:, 2]) / pixel]
    triangle, bary, depth = rasterize(uv, v[:, 1], f, size, size)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = BACKGROUND
    seen = triangle >= 0
    if seen.any():
        normals = np.asarray(vertex_normals(v, f) if normals is None else normals, np.float64)
        tri = triangle[seen]
        n = np.einsum("nk,nkc->nc", bary[seen].astype(np.float64), normals[f[tri]])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        light = LIGHT / np.linalg.norm(LIGHT)
        # Two-sided: the normals of an artist's mesh may point either way.
        lambert = np.abs(n @ light)
        shade = AMBIENT + (1.0 - AMBIENT) * lambert
        image[seen] = np.clip(255.0 * shade[:, None] * ALBEDO[None], 0, 255).astype(np.uint8)
    return Render(image, triangle, bary, depth, origin, pixel, v, f)
