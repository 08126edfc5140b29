"""Video performances: frame decoding and the MediaPipe face landmarker on ONNX Runtime.

``core/takes/video.py`` turns a video file into a :class:`~..takes.Take` with these.
"""
