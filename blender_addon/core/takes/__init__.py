# SPDX-License-Identifier: GPL-3.0-or-later
"""Every performance source becomes one :class:`Take` (see ``take.py``).

Readers raise :class:`TakeError` with a one-line message for the artist.
"""

from .errors import TakeError
from .facecap_txt import read_facecap_txt, write_facecap_txt
from .llf_csv import read_llf_csv, write_llf_csv
from .take import PlacedTake, Take

__all__ = ["Take", "PlacedTake", "TakeError", "read_llf_csv", "write_llf_csv", "read_facecap_txt",
           "write_facecap_txt"]
