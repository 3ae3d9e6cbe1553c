"""Tables of the 14x24-hour update rule: new-media accounts and their posts."""

from __future__ import annotations
