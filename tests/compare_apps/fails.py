"""Every request raises: Gunicorn answers 500, as a broken route would."""


def app(environ, start_response):
    raise RuntimeError("this route is broken")
