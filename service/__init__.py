"""Aftercare: reminders, check-ins and escalation after a back-walking session."""

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from service.config import ROOT, Config


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    config = Config(test_config)
    app.config.from_mapping(config.as_dict())
    app.extensions["aftercare.config"] = config

    from service import cli, db
    from service.api import bp as api_bp
    from service.health import bp as health_bp
    from service.webhooks import bp as webhooks_bp

    db.init_app(app)
    cli.init_app(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(health_bp)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _http_error(exc: HTTPException):
    """Machine clients get JSON errors; people get Flask's page (the web UI renders its own)."""
    if request.path.startswith(("/api/", "/webhooks/")):
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify({"error": code, "message": exc.description}), exc.code
    return exc
