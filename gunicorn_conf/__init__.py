"""How Gunicorn serves the app: shared settings (base.py) and one small file per setup.

    gunicorn -c python:gunicorn_conf.gthread        # from the folder that holds this package

The app package knows nothing of this one, and this one never imports Flask or the app: the
Gunicorn master imports it to read its settings, and for the gevent setup nothing that opens
locks or ssl may load before the worker monkey-patches (see base.py).
"""

# The three setups, one module each. The one place their names are listed: the launchers,
# the benchmark and the tests read them from here.
SETUPS = ("sync", "gthread", "gevent")
