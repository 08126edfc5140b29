# SPDX-License-Identifier: GPL-3.0-or-later
"""Mesh preprocessing shared by training and the add-on, one concept per module.

* :mod:`.topology`: triangulate, weld, clean, components, areas, normals;
* :mod:`.head`: the skin among loose parts, the head's frame and scale, its facing;
* :mod:`.proxy`: a bounded-size proxy of any mesh and the way back, subdivision.

Correspondence (closest points, barycentric interpolation) is :mod:`..closest_point`.
"""
