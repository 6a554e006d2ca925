"""Oscar dashboard pages for segmentation (an ``OscarDashboardConfig`` app)."""
