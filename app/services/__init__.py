"""Business rules as plain functions: called by views and by jobs alike."""
