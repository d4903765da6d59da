"""PyInstaller hook for VisPy (pyinstaller-hooks-contrib has none).

VisPy reads its GLSL shader snippets (``vispy/glsl/**``), its bundled font (``vispy/util/fonts/data``)
and a few data files from its package folder at run time, and picks the GUI backend and the GL
backend with ``importlib``, which PyInstaller's import analysis cannot see. Only the PySide6 backend
is collected: the others would drag PyQt5/PyQt6/Tk/GLFW/SDL2 into the bundle.
"""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules

# shaders, fonts, io data; no tests, no Cython sources
datas = collect_data_files("vispy", excludes=["**/tests/**", "**/*.pyx", "**/*.pyi"])

hiddenimports = [
    "vispy.app.backends._pyside6",
    # the GL function table is chosen by name (vispy.gloo.gl.use_gl('gl2'))
    *collect_submodules("vispy.gloo.gl", filter=lambda name: ".tests" not in name),
    # text rendering: the CPU signed-distance-field extension is imported lazily
    *collect_submodules("vispy.visuals.text", filter=lambda name: ".tests" not in name),
]

# other GUI backends and their toolkits (vispy.app.backends imports them by name, never statically)
excludedimports = [
    "vispy.app.backends._pyqt5",
    "vispy.app.backends._pyqt6",
    "vispy.app.backends._pyside2",
    "vispy.app.backends._pyside",
    "vispy.app.backends._tk",
    "vispy.app.backends._glfw",
    "vispy.app.backends._sdl2",
    "vispy.app.backends._wx",
    "vispy.app.backends._jupyter_rfb",
    "vispy.app.backends._osmesa",
    "vispy.app.backends._egl",
    "vispy.app.backends._test",
    "vispy.app.backends._template",
]
