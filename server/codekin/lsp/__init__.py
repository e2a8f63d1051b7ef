"""The language server: one module per feature (similar, lens, symbols, commands) over a
protocol-free session (session.py); server.py wires them to pygls."""
