"""The WSGI entry point: ``gunicorn app.web.wsgi:app``."""

from app.web import create_app

app = create_app()
