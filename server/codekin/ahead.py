"""The query model loaded, and a query's text embedded, on a thread while the index loads.

A cold `codekin search` spends most of its time on two independent things: loading the index
snapshot and loading the model (OpenVINO compiles, then the first inference). On a thread the
model's C++ work runs beside the snapshot's, and the CLI starts that thread before it even
imports the search code (numpy, pyarrow, the ranking), so the compile overlaps those imports.
This module stays light: the thread imports what it needs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.modes import mode_of

if TYPE_CHECKING:
    import numpy as np

    from codekin.config import Config
    from codekin.embedding import Embedder

log = logging.getLogger(__name__)


class Ahead:
    """`load()` (the query model) and then, with `text_of`, the vector of the text it gives, made
    on a thread; a failure leaves them None (the caller loads and embeds again, and reports it)."""

    def __init__(self, load: Callable[[], Embedder | None], text_of: Callable[[], str] | None = None) -> None:
        self.text: str | None = None
        self.embedder: Embedder | None = None
        self.key: str | None = None
        self.vector: np.ndarray | None = None
        self._thread = threading.Thread(target=self._run, args=(load, text_of), name="codekin-model", daemon=True)
        self._thread.start()

    def _run(self, load: Callable[[], Embedder | None], text_of: Callable[[], str] | None) -> None:
        try:
            embedder = load()
            if embedder is not None and text_of is not None:
                self.text = text_of()
                self.key, self.vector = embedder.key, embedder.encode([self.text])[0]
            self.embedder = embedder
        except Exception as exc:  # noqa: BLE001 - never a thread's traceback: the query loads again and reports it
            log.info("the model did not load ahead of the query: %s", exc)

    def wait(self) -> Embedder | None:
        """The loaded model, once the thread is done (None: it did not load)."""
        self._thread.join()
        return self.embedder

    def vector_for(self, text: str, key: str | None) -> np.ndarray | None:
        """The vector of `text` in the space `key` when the thread made exactly that one."""
        self._thread.join()
        if self.vector is None or text != self.text or (key is not None and key != self.key):
            return None
        return self.vector


def embed_ahead(root: Path, config: Config, query: str, mode: str | None) -> Ahead | None:
    """For a cold search of `query`: load the model that wrote the index's vectors and embed the
    query's text on a thread, when the search will need a vector (its mode embeds, the query has
    text). None when it will not; the thread gives up quietly when the index has no vectors."""
    if not mode_of(mode or config.search.mode).needs_vector or not query.strip():
        return None

    def load() -> Embedder | None:
        from codekin.index.recorded import load_state
        from codekin.models.serving import indexed_model, load_verified
        from codekin.state import INDEX_STATE, state_path

        # The state file alone (no store: pyarrow is the search's import); a foreign index
        # fails the search itself, and indexed_model honours no model a repository names.
        state = load_state(state_path(root, INDEX_STATE))
        if not state.get("dense", {}).get("embedded_chunks"):
            return None  # nothing to compare a vector with: the search ranks by words
        return load_verified(root, indexed_model(root, config.model, state))

    def text_of() -> str:
        from codekin.index.query import parse

        return parse(query).text  # the text Engine.search embeds

    return Ahead(load, text_of)
