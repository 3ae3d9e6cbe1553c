"""Tables of the 24-hour duty watch: shifts, inspections, incidents and their pages."""

from __future__ import annotations
