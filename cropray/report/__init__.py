"""Self-contained HTML reports: plots embedded as data URIs, one file to open or mail."""

from cropray.report.crops import crop_grid_png, fetch_crops
from cropray.report.html import Section, render_html

__all__ = ["Section", "crop_grid_png", "fetch_crops", "render_html"]
