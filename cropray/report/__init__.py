"""Self-contained HTML reports: plots embedded as data URIs, one file to open or mail."""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "crop_grid_png": "cropray.report.crops",
    "fetch_crops": "cropray.report.crops",
    "Section": "cropray.report.html",
    "render_html": "cropray.report.html",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
