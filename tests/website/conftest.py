"""The shared Playwright fixtures (tests/browser.py) for the website kit's browser tests"""
