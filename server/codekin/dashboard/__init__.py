"""The learning dashboard: a self-contained HTML page (report.py), a localhost view (server.py)."""
