"""Retrieval as a library and as a service.

* :mod:`.searcher`: :class:`Searcher` -- a loaded index answering stored-INR, parameter and image
  queries (what ``ssl-ws query`` and ``ssl-ws serve`` both call);
* :mod:`.service`: the FastAPI app of ``ssl-ws serve`` (JSON API, web page, request limits).
"""

from .searcher import Searcher

__all__ = ["Searcher"]
