"""Camera frusta: a wire pyramid per view in the view's hue, its image as a texture on the far plane.

All frusta share one line visual (plus one for the highlighted frustum, drawn wider and brighter) and
one textured-quad visual whose texture is an atlas of the views' images downsampled to at most
:data:`THUMB_SIZE` pixels. Frames: world = the reconstruction's (OpenCV axes); poses are
cam-to-world; the far plane is at ``depth`` along each camera's +z.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image
from vispy import gloo, scene
from vispy.scene.visuals import create_visual_node
from vispy.visuals import Visual

from fast3r_core.geometry import frustum_corners, frustum_segments

__all__ = ["THUMB_SIZE", "Frusta", "build_atlas", "thumbnail"]

THUMB_SIZE = 128
"""Longest side in pixels of a view's texture on its frustum."""

_QUAD_VERT = """
attribute vec3 a_position;
attribute vec2 a_texcoord;
attribute float a_dim;
varying vec2 v_texcoord;
varying float v_dim;
void main() {
    gl_Position = $transform(vec4(a_position, 1.0));
    v_texcoord = a_texcoord;
    v_dim = a_dim;
}
"""

_QUAD_FRAG = """
uniform sampler2D u_atlas;
uniform vec3 u_bg;
uniform float u_alpha;
varying vec2 v_texcoord;
varying float v_dim;
void main() {
    vec3 c = texture2D(u_atlas, v_texcoord).rgb;
    gl_FragColor = vec4(mix(c, u_bg, v_dim), u_alpha);
}
"""


def thumbnail(rgb: np.ndarray, max_side: int = THUMB_SIZE) -> np.ndarray:
    """Downsample an (H, W, 3) uint8 image so that its longest side is at most ``max_side`` (area filter)."""
    h, w = rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return np.ascontiguousarray(rgb)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BOX))


def build_atlas(
    images: Sequence[np.ndarray], cell: int = THUMB_SIZE, max_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Pack thumbnails into one texture, one ``cell x cell`` slot per image, row-major.

    Parameters
    ----------
    images : sequence of np.ndarray, each (h, w, 3) uint8 with h, w <= cell
    cell : int
        Slot size in pixels (shrunk when the atlas would exceed ``max_size``).
    max_size : int
        Largest atlas side.

    Returns
    -------
    atlas : np.ndarray, (S, S, 3) uint8
    uv : np.ndarray, (V, 4) float32
        ``(u0, v0, u1, v1)`` texture coordinates of each image's top-left and bottom-right corners,
        inset by half a texel (texture row 0 is the image's top row).
    """
    n = max(1, len(images))
    cols = math.ceil(math.sqrt(n))
    cell = min(cell, max(4, max_size // cols))
    side = cols * cell
    atlas = np.zeros((side, side, 3), np.uint8)
    uv = np.zeros((len(images), 4), np.float32)
    for i, img in enumerate(images):
        if max(img.shape[:2]) > cell:
            img = thumbnail(img, cell)
        h, w = img.shape[:2]
        r, c = divmod(i, cols)
        y0, x0 = r * cell, c * cell
        atlas[y0 : y0 + h, x0 : x0 + w] = img
        uv[i] = ((x0 + 0.5) / side, (y0 + 0.5) / side, (x0 + w - 0.5) / side, (y0 + h - 0.5) / side)
    return atlas, uv


class TexturedQuadsVisual(Visual):
    """Quads textured from one atlas (two triangles each, no index buffer)."""

    def __init__(self) -> None:
        Visual.__init__(self, vcode=_QUAD_VERT, fcode=_QUAD_FRAG)
        self._draw_mode = "triangles"
        self._pos = gloo.VertexBuffer(np.zeros((6, 3), np.float32))
        self._tex = gloo.VertexBuffer(np.zeros((6, 2), np.float32))
        self._dim = gloo.VertexBuffer(np.zeros(6, np.float32))
        self._atlas = gloo.Texture2D(np.zeros((1, 1, 3), np.uint8), interpolation="linear")
        prog = self.shared_program
        prog["a_position"] = self._pos
        prog["a_texcoord"] = self._tex
        prog["a_dim"] = self._dim
        prog["u_atlas"] = self._atlas
        prog["u_bg"] = (0.0, 0.0, 0.0)
        prog["u_alpha"] = 0.85
        self._n = 0
        # Drawn after the points and blended: the points behind show through a little. (Never turn
        # depth writes off here: VisPy does not restore the depth mask, and the next clear would
        # leave the depth buffer alone.)
        self.set_gl_state("translucent", depth_test=True, cull_face=False)

    def set_atlas(self, atlas: np.ndarray) -> None:
        self._atlas.set_data(np.ascontiguousarray(atlas))

    def set_quads(self, corners: np.ndarray, uv: np.ndarray, dim: np.ndarray) -> None:
        """Set the quads.

        Parameters
        ----------
        corners : np.ndarray, (Q, 4, 3)
            World corners: top-left, top-right, bottom-right, bottom-left (as the image is seen).
        uv : np.ndarray, (Q, 4)
            ``(u0, v0, u1, v1)`` atlas coordinates of each image (see :func:`build_atlas`).
        dim : np.ndarray, (Q,)
            How far each quad fades towards the background (0..1).
        """
        q = len(corners)
        self._n = q
        if q == 0:
            self.update()
            return
        tl, tr, br, bl = (corners[:, i] for i in range(4))
        pos = np.stack([tl, tr, br, tl, br, bl], axis=1).reshape(-1, 3).astype(np.float32)
        u0, v0, u1, v1 = uv[:, 0], uv[:, 1], uv[:, 2], uv[:, 3]
        t_tl, t_tr = np.stack([u0, v0], 1), np.stack([u1, v0], 1)
        t_br, t_bl = np.stack([u1, v1], 1), np.stack([u0, v1], 1)
        tex = np.stack([t_tl, t_tr, t_br, t_tl, t_br, t_bl], axis=1).reshape(-1, 2).astype(np.float32)
        self._pos.set_data(pos)
        self._tex.set_data(tex)
        self._dim.set_data(np.repeat(np.asarray(dim, np.float32), 6))
        self.update()

    def set_background(self, rgb: tuple[float, float, float]) -> None:
        self.shared_program["u_bg"] = tuple(float(x) for x in rgb)
        self.update()

    def _prepare_transforms(self, view: Visual) -> None:
        view.view_program.vert["transform"] = view.get_transform()

    def _prepare_draw(self, view: Visual) -> bool:
        return self._n > 0

    def _compute_bounds(self, axis: int, view: Visual) -> None:
        return None


TexturedQuads = create_visual_node(TexturedQuadsVisual)


class Frusta:
    """The cameras of a reconstruction in a VisPy scene.

    Parameters
    ----------
    parent : vispy.scene.Node
        The view's scene.
    """

    LINE_WIDTH = 1.6
    HIGHLIGHT_WIDTH = 4.0

    def __init__(self, parent: scene.Node) -> None:
        self.quads = TexturedQuads(parent=parent)
        self.lines = scene.visuals.Line(
            parent=parent, connect="segments", method="gl", width=self.LINE_WIDTH, antialias=False
        )
        self.highlight_lines = scene.visuals.Line(
            parent=parent, connect="segments", method="gl", width=self.HIGHLIGHT_WIDTH, antialias=False
        )
        for node in (self.lines, self.highlight_lines):
            node.set_gl_state("translucent", depth_test=True)
        self.quads.order = 1
        self.lines.order = 2
        self.highlight_lines.order = 3
        self._segments = np.zeros((0, 11, 2, 3))
        self._corners = np.zeros((0, 4, 3))
        self._centers = np.zeros((0, 3))
        self._uv = np.zeros((0, 4), np.float32)
        self._palette = np.zeros((0, 3), np.float32)
        self._shown = np.zeros(0, bool)
        self._near = np.zeros(0, bool)
        self._depth = 0.0
        self._highlight = -1
        self._visible = True
        self._textures = True
        self._refresh()

    # -- data -------------------------------------------------------------------------------------
    def set_cameras(
        self,
        c2w: np.ndarray,
        intrinsics: np.ndarray,
        sizes: Sequence[tuple[int, int]],
        images: Sequence[np.ndarray],
        palette: np.ndarray,
        depth: float,
    ) -> None:
        """Build the frusta.

        Parameters
        ----------
        c2w : np.ndarray, (V, 4, 4)
            Cam-to-world poses, OpenCV axes.
        intrinsics : np.ndarray, (V, 3, 3)
            Intrinsics in pixels of the images below (model resolution).
        sizes : sequence of (W, H)
            Image size of each view, in the pixels of ``intrinsics``.
        images : sequence of (H, W, 3) uint8
            Each view's image (downsampled here to at most :data:`THUMB_SIZE`).
        palette : np.ndarray, (V, 3) float
            Colour of each view.
        depth : float
            Far-plane distance along each camera's +z, in world units.
        """
        v = len(c2w)
        self._segments = np.array(
            [frustum_segments(c2w[i], intrinsics[i], sizes[i][0], sizes[i][1], depth) for i in range(v)]
        ).reshape(v, 11, 2, 3)
        corners = np.array(
            [frustum_corners(c2w[i], intrinsics[i], sizes[i][0], sizes[i][1], depth) for i in range(v)]
        ).reshape(v, 5, 3)
        self._centers = corners[:, 0]
        self._corners = corners[:, 1:]
        atlas, self._uv = build_atlas([thumbnail(im) for im in images])
        self.quads.set_atlas(atlas)
        self._palette = np.asarray(palette, np.float32).reshape(v, 3)
        self._shown = np.ones(v, bool)
        self._near = np.zeros(v, bool)
        self._depth = float(depth)
        self._highlight = -1
        self._refresh()

    def clear(self) -> None:
        self._segments = np.zeros((0, 11, 2, 3))
        self._corners = np.zeros((0, 4, 3))
        self._centers = np.zeros((0, 3))
        self._shown = np.zeros(0, bool)
        self._near = np.zeros(0, bool)
        self._highlight = -1
        self._refresh()

    def set_shown(self, shown: np.ndarray) -> None:
        """Which views' frusta are drawn, (V,) bool."""
        shown = np.asarray(shown, bool)
        if np.array_equal(shown, self._shown):
            return
        self._shown = shown.copy()
        self._refresh()

    def set_eye(self, eye: np.ndarray) -> None:
        """Hide the frusta the eye is inside of (after flying to a view, its own image would cover it)."""
        if len(self._centers) == 0:
            return
        near = np.linalg.norm(self._centers - np.asarray(eye, np.float64), axis=1) < 1.2 * self._depth
        if not np.array_equal(near, self._near):
            self._near = near
            self._refresh()

    def set_highlight(self, view: int) -> None:
        if view != self._highlight:
            self._highlight = int(view)
            self._refresh()

    def set_visible(self, visible: bool) -> None:
        self._visible = bool(visible)
        for node in (self.quads, self.lines, self.highlight_lines):
            node.visible = self._visible
        self._refresh()

    def set_background(self, rgb: tuple[float, float, float]) -> None:
        self.quads.set_background(rgb)

    def set_line_scale(self, scale: float) -> None:
        """Multiply line widths (offscreen renders larger than the screen)."""
        self.lines.set_data(width=self.LINE_WIDTH * scale)
        self.highlight_lines.set_data(width=self.HIGHLIGHT_WIDTH * scale)

    @property
    def n_views(self) -> int:
        return len(self._segments)

    def anchors(self) -> tuple[np.ndarray, np.ndarray]:
        """Points that stand for each shown frustum when picking.

        Returns
        -------
        points : np.ndarray, (2 S, 3)
            The far-plane centre then the camera centre of each shown view (world coordinates).
        owners : np.ndarray, (2 S,) int
            View index of each point.
        """
        views = np.flatnonzero(self._drawn()) if self._visible else np.zeros(0, np.int64)
        far = self._corners[views].mean(axis=1) if len(views) else np.zeros((0, 3))
        pts = np.concatenate([far, self._centers[views]])
        return pts, np.concatenate([views, views])

    # -- drawing ----------------------------------------------------------------------------------
    def _drawn(self) -> np.ndarray:
        return self._shown & ~self._near if len(self._near) == len(self._shown) else self._shown

    def _refresh(self) -> None:
        drawn = self._drawn()
        views = np.flatnonzero(drawn)
        hl = self._highlight
        if len(views) == 0 or not self._visible:
            self.lines.visible = self.highlight_lines.visible = self.quads.visible = False
            return
        seg = self._segments[views].reshape(-1, 3).astype(np.float32)
        rgba = np.ones((len(views), 4), np.float32)
        rgba[:, :3] = self._palette[views]
        if hl >= 0:
            rgba[views != hl, 3] = 0.45
        color = np.repeat(rgba, 22, axis=0)
        self.lines.set_data(pos=seg, color=color)
        self.lines.visible = True
        if 0 <= hl < len(drawn) and drawn[hl]:
            bright = 0.45 * self._palette[hl] + 0.55
            c = np.ones((22, 4), np.float32)
            c[:, :3] = bright
            self.highlight_lines.set_data(pos=self._segments[hl].reshape(-1, 3).astype(np.float32), color=c)
            self.highlight_lines.visible = True
        else:
            self.highlight_lines.visible = False
        dim = np.zeros(len(views), np.float32)
        if hl >= 0:
            dim[views != hl] = 0.5
        self.quads.set_quads(self._corners[views], self._uv[views], dim)
        self.quads.visible = True
