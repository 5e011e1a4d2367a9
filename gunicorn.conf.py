"""gunicorn settings read from the working directory by every `gunicorn` started here (make run,
the contract runner, the tests' and benchmarks' servers). Command-line flags still win."""

# No limit on the request line: the app answers an over-long URI with a 414 problem of its own
# (TPA_MAX_URI_LENGTH, api/errors.py), where gunicorn would answer with an HTML page. A contract
# fuzzing run with a random seed found that page.
limit_request_line = 0
