"""Staff-only DRF endpoints (``IsAdminUser``): runs with their segment summaries, and memberships."""
