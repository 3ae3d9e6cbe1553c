"""The command line (serve, demo, check-config, export, verify-audit) and the simulator-backed stack the demo runs."""
