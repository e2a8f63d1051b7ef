"""LanceDB tables (files, chunks, one vectors table per model version) and search over them."""
