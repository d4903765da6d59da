"""The point-cloud visual: every point on the GPU once, a count decides how many are drawn.

Vertex buffers hold all the points of one (reconstruction, source) in confidence order (highest
first): position (float32 xyz), packed RGB and packed view/confidence (see :mod:`.colors`). A
confidence filter is a prefix, so it only changes the number of vertices drawn
(``glDrawArrays(GL_POINTS, 0, count)``). A view/sky mask or the level of detail draws a prefix of an
index buffer instead (``glDrawElements`` with ``count`` indices). Colour mode, point size and
highlighting are uniforms: switching them uploads nothing.
"""

from __future__ import annotations

import numpy as np
from vispy import gloo
from vispy.gloo.context import get_current_canvas
from vispy.scene.visuals import create_visual_node
from vispy.visuals import Visual

from .colors import AUX_FRACTION, colormap_lut, view_palette

__all__ = ["COLOR_MODE_CODES", "PointCloud", "PointCloudVisual"]

COLOR_MODE_CODES = {"rgb": 0.0, "confidence": 1.0, "view": 2.0}

_VERT = """
uniform float u_size;        // point diameter in framebuffer pixels
uniform float u_mode;        // 0 rgb, 1 confidence, 2 view
uniform float u_highlight;   // highlighted view, -1 for none
uniform float u_dim;         // 0..1: how far other views fade towards the background
uniform float u_emphasis;    // size factor of the highlighted view's points
uniform float u_n_views;
uniform vec3 u_bg;
uniform sampler2D u_palette; // 1 x V, one colour per view
uniform sampler2D u_cmap;    // 1 x 256 colormap
attribute vec3 a_position;
attribute float a_rgb;       // r * 65536 + g * 256 + b
attribute float a_aux;       // view + AUX_FRACTION * normalised confidence
varying vec4 v_color;

void main() {
    gl_Position = $transform(vec4(a_position, 1.0));
    float view = floor(a_aux);
    float c = clamp((a_aux - view) / AUX_FRACTION, 0.0, 1.0);
    float r = floor(a_rgb / 65536.0);
    float g = floor((a_rgb - r * 65536.0) / 256.0);
    float b = a_rgb - r * 65536.0 - g * 256.0;
    vec3 rgb = vec3(r, g, b) / 255.0;
    vec3 col = rgb;
    if (u_mode > 1.5) {
        vec3 hue = texture2DLod(u_palette, vec2((view + 0.5) / u_n_views, 0.5), 0.0).rgb;
        float luma = dot(rgb, vec3(0.299, 0.587, 0.114));
        col = hue * (0.55 + 0.45 * luma);
    } else if (u_mode > 0.5) {
        col = texture2DLod(u_cmap, vec2((c * 255.0 + 0.5) / 256.0, 0.5), 0.0).rgb;
    }
    float size = u_size;
    if (u_highlight > -0.5) {
        if (abs(view - u_highlight) < 0.5) {
            size *= u_emphasis;
        } else {
            col = mix(col, u_bg, u_dim);
        }
    }
    gl_PointSize = size;
    v_color = vec4(col, 1.0);
}
""".replace("AUX_FRACTION", repr(float(AUX_FRACTION)))

_FRAG = """
uniform float u_round;
varying vec4 v_color;
void main() {
    if (u_round > 0.5) {
        vec2 d = gl_PointCoord - vec2(0.5);
        if (dot(d, d) > 0.25) discard;
    }
    gl_FragColor = v_color;
}
"""


class PointCloudVisual(Visual):
    """Points drawn as screen-aligned squares (discs from 4 px up) of a constant pixel size.

    Use :meth:`set_points` once per data change and :meth:`set_draw` for each new selection.
    """

    def __init__(self) -> None:
        Visual.__init__(self, vcode=_VERT, fcode=_FRAG)
        self._draw_mode = "points"
        self._vbo_pos = gloo.VertexBuffer(np.zeros((1, 3), np.float32))
        self._vbo_rgb = gloo.VertexBuffer(np.zeros(1, np.float32))
        self._vbo_aux = gloo.VertexBuffer(np.zeros(1, np.float32))
        prog = self.shared_program
        prog["a_position"] = self._vbo_pos
        prog["a_rgb"] = self._vbo_rgb
        prog["a_aux"] = self._vbo_aux
        self._palette_tex = gloo.Texture2D(np.zeros((1, 1, 4), np.float32), interpolation="nearest")
        cmap = colormap_lut("viridis").reshape(1, -1, 4)
        self._cmap_tex = gloo.Texture2D(np.ascontiguousarray(cmap), interpolation="nearest")
        prog["u_palette"] = self._palette_tex
        prog["u_cmap"] = self._cmap_tex
        self._n_points = 0
        self._count = 0
        self._index: gloo.IndexBuffer | None = None
        self._size = 2.0
        self._px_scale = 1.0
        self._highlight = -1
        self._uniforms = {
            "u_mode": 0.0,
            "u_highlight": -1.0,
            "u_dim": 0.7,
            "u_emphasis": 1.6,
            "u_n_views": 1.0,
            "u_bg": (0.0, 0.0, 0.0),
        }
        for k, v in self._uniforms.items():
            prog[k] = v
        self._update_size()
        self.set_gl_state("opaque", depth_test=True, cull_face=False)

    # -- data -------------------------------------------------------------------------------------
    def set_points(self, xyz: np.ndarray, rgb_packed: np.ndarray, aux: np.ndarray, n_views: int) -> None:
        """Upload every point (in confidence order) and the view palette.

        Parameters
        ----------
        xyz : np.ndarray, (N, 3) float32
            World positions (OpenCV axes, world = camera of view 0).
        rgb_packed : np.ndarray, (N,) float32
            :func:`.colors.pack_rgb` of the colours.
        aux : np.ndarray, (N,) float32
            :func:`.colors.pack_aux` of view index and normalised confidence.
        n_views : int
            Number of views (size of the palette).
        """
        n = len(xyz)
        if n == 0:  # GL buffers cannot be empty: keep one dummy point and draw none
            xyz = np.zeros((1, 3), np.float32)
            rgb_packed = aux = np.zeros(1, np.float32)
        self._vbo_pos.set_data(np.ascontiguousarray(xyz, dtype=np.float32))
        self._vbo_rgb.set_data(np.ascontiguousarray(rgb_packed, dtype=np.float32))
        self._vbo_aux.set_data(np.ascontiguousarray(aux, dtype=np.float32))
        self._n_points = n
        self.set_palette(view_palette(max(n_views, 1)))
        self.set_draw(None, 0)

    def set_aux(self, aux: np.ndarray) -> None:
        """Replace the packed view/confidence attribute (e.g. another confidence normalisation)."""
        if self._n_points:
            self._vbo_aux.set_data(np.ascontiguousarray(aux, dtype=np.float32))

    def set_palette(self, palette: np.ndarray) -> None:
        """Per-view colours, (V, 3) float in 0..1."""
        rgba = np.ones((1, len(palette), 4), np.float32)
        rgba[0, :, :3] = palette
        self._palette_tex.set_data(rgba)
        self._set_uniform("u_n_views", float(len(palette)))

    @property
    def n_points(self) -> int:
        """Points uploaded."""
        return self._n_points

    @property
    def count(self) -> int:
        """Points (or indices) drawn."""
        return self._count

    def set_draw(self, index: gloo.IndexBuffer | None, count: int) -> None:
        """Draw points ``0..count-1`` (``index`` None) or the first ``count`` indices of ``index``."""
        self._index = index
        self._count = max(0, int(count))
        self.update()

    # -- style ------------------------------------------------------------------------------------
    def set_color_mode(self, mode: str) -> None:
        self._set_uniform("u_mode", COLOR_MODE_CODES[mode])

    def set_point_size(self, size: float) -> None:
        """Diameter in logical pixels."""
        self._size = float(size)
        self._update_size()

    def set_pixel_scale(self, scale: float) -> None:
        """Framebuffer pixels per logical pixel (HiDPI screens, offscreen renders at a larger size)."""
        self._px_scale = float(scale)
        self._update_size()

    def set_background(self, rgb: tuple[float, float, float]) -> None:
        """Colour that dimmed points fade towards."""
        self._set_uniform("u_bg", tuple(float(x) for x in rgb))

    def set_highlight(self, view: int, dim: float = 0.7, emphasis: float = 1.6) -> None:
        """Emphasise ``view``'s points (size x ``emphasis``) and fade the others; -1 for none."""
        self._highlight = int(view)
        self._set_uniform("u_highlight", float(view))
        self._set_uniform("u_dim", float(dim))
        self._set_uniform("u_emphasis", float(emphasis))

    def _update_size(self) -> None:
        px = max(1.0, self._size * self._px_scale)
        self.shared_program["u_size"] = px
        self.shared_program["u_round"] = 1.0 if px >= 4.0 else 0.0
        self.update()

    def _set_uniform(self, name: str, value: object) -> None:
        if self._uniforms.get(name) != value:
            self._uniforms[name] = value
            self.shared_program[name] = value
            self.update()

    # -- Visual -----------------------------------------------------------------------------------
    def _prepare_transforms(self, view: Visual) -> None:
        view.view_program.vert["transform"] = view.get_transform()

    def _prepare_draw(self, view: Visual) -> bool:
        return True

    def _compute_bounds(self, axis: int, view: Visual) -> None:
        return None

    def draw(self) -> None:
        """Draw ``count`` points; like :meth:`Visual.draw` but with a draw range."""
        if not self.visible or self._count == 0 or self._n_points == 0:
            return
        if self._prepare_draw(view=self) is False:
            return
        self._configure_gl_state()
        prog = self._program
        prog.build_if_needed()
        prog.update_variables()
        canvas = get_current_canvas()
        glir = canvas.context.glir
        glir.associate(prog.glir)
        if self._index is None:
            selection: tuple = (0, min(self._count, self._n_points))
        else:
            glir.associate(self._index.glir)
            selection = (self._index.id, "UNSIGNED_INT", min(self._count, self._index.size))
        glir.command("DRAW", prog.id, "points", selection)
        canvas.context.flush_commands()


PointCloud = create_visual_node(PointCloudVisual)
"""Scene-graph node of :class:`PointCloudVisual`."""
