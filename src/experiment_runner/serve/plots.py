"""The plot endpoints of the page (/api/plot, /api/parallel, /api/curves, /api/compare): see the page."""
from typing import Any, Callable, Dict

#: Path -> handler of each plot endpoint; the server serves them beside the API of api.py.
ROUTES: Dict[str, Callable[..., Any]] = {}
