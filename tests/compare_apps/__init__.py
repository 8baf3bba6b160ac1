"""Apps built for `compare`'s tests (harness/compare.py): each has one nature, or one
pitfall, that compare must find. Plain WSGI apps, importable from the repository's root
(e.g. WSGI_APP=tests.compare_apps.cpu_heavy:app)."""
