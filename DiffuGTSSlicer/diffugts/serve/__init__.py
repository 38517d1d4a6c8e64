"""``diffugts serve``: models loaded once, an authenticated HTTP API (FastAPI) and one worker running the jobs.

    app = create_app(segmenter, work_dir, token=None)   # then uvicorn.run(app, host="127.0.0.1", port=8765)

The API is in :mod:`diffugts.serve.app`; :mod:`diffugts.client` is the standard-library client.
"""

from .app import create_app

__all__ = ["create_app"]
