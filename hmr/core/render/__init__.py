"""A small vectorised z-buffer rasteriser and a shaded mesh renderer (numpy only).

Used by the synthetic data source (``hmr synth``) and for overlay pictures. No display, no
OpenGL: it runs wherever numpy does.
"""

from hmr.core.render.rasterize import Fragments, rasterize
from hmr.core.render.shade import render_mesh, vertex_normals

__all__ = ["Fragments", "rasterize", "render_mesh", "vertex_normals"]
