"""The unit's rules as pure code (no I/O, no storage, no aiohttp): 三审 chains, submissions, the form, the audit hash, the calendar."""
