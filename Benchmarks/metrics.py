"""The daemon's /metrics (Prometheus text) as the benchmark scripts read it.

Imported by the Python the shell benchmarks run inline (PYTHONPATH=Benchmarks), so that
every figure taken from the daemon is parsed the same way.
"""
import re
import urllib.request


def scrape(url):
    """The text of one /metrics page."""
    return urllib.request.urlopen(url, timeout=5).read().decode()


def total(text, name):
    """The sum of every sample of metric `name`, over all its label sets (0 if absent)."""
    pattern = r"^" + re.escape(name) + r"(?:\{[^}]*\})? ([0-9.e+]+)$"
    return sum(float(v) for v in re.findall(pattern, text, re.M))
