# SPDX-License-Identifier: GPL-3.0-or-later
"""Video performances, bpy-free: a video file becomes a :class:`~..takes.Take`.

``decode.py`` reads frames (PyAV), ``landmarker.py`` runs MediaPipe's face landmarker on
ONNX Runtime, ``take.py`` tracks a whole video, calibrates, filters and makes the take.
"""
