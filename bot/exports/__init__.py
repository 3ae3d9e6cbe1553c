"""Exports: the 保密审查表 and the 台账 for a period, streamed to xlsx or CSV."""
