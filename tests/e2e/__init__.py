"""Browser tests: the real app in a real server, driven by Playwright in Debian's Chromium."""
