# SPDX-License-Identifier: GPL-3.0-or-later
"""Operator options that mean the same in every feature, so they read the same everywhere."""

EXISTING_ITEMS = (
    ("SKIP", "Keep", "Keep what you made under the same name (shape keys, or animation curves "
                     "on the same keys) untouched, and say so"),
    ("REPLACE", "Replace", "Replace what you made under the same name (shape keys, or animation "
                           "curves on the same keys), and say so"),
)
"""What a write does with the artist's own data of the same name: the rig's shape keys,
the bake's F-curves. The identifiers are public API (``existing='SKIP'``)."""
