"""Aftercare: reminders, check-ins and escalation after a back-walking session."""

from flask import Flask, abort, current_app, g, request

from service.config import PACKAGE, TEMPLATES, Config


def create_app(test_config: dict | None = None, *, serving: bool = True) -> Flask:
    """serving: the app will answer requests (gunicorn's `service:create_app()`), so unsafe
    settings refuse it (config.UnsafeSettings). The `aftercare` command builds it with
    serving=False, so that `doctor` can say what is wrong, and checks `run` and `worker` itself."""
    config = Config(test_config)
    if serving:
        config.check_can_serve()
    app = Flask(__name__, template_folder=str(TEMPLATES))
    app.config.from_mapping(config.as_dict())
    app.extensions["aftercare.config"] = config

    from service import cli, db
    from service.ops import logs
    from service.ops.health import bp as health_bp
    from service.web import error_pages
    from service.web.api import bp as api_bp
    from service.web.webhooks import bp as webhooks_bp

    db.init_app(app)
    logs.init_app(app)  # first, so that every later hook logs with the request id
    cli.init_app(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(health_bp)
    _init_web(app, exempt_from_csrf=(api_bp, webhooks_bp))
    error_pages.init_app(app)  # JSON for /api and /webhooks, a page for people everywhere else
    app.before_request(_refuse_oversize)
    return app


def _refuse_oversize():
    """413 before anything reads the body, whatever its type (Flask checks only what it parses;
    a chunked body without Content-Length is cut off by the same limit when read)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit and (request.content_length or 0) > limit:
        abort(413, f"the body is larger than {limit} bytes")


def _init_web(app: Flask, exempt_from_csrf) -> None:
    """The pages people use: staff login, the staff app, the client's aftercare page."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from service.extensions import babel, csrf, login_manager
    from service.messaging import phones
    from service.web import security, static_files
    from service.web.auth import bp as auth_bp
    from service.web.client_page import bp as client_page_bp
    from service.web.staff import bp as staff_bp

    app.config.update(
        BABEL_TRANSLATION_DIRECTORIES=str(PACKAGE / "translations"),
        WTF_CSRF_TIME_LIMIT=None,  # a tablet left open all day must still enrol
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["PUBLIC_BASE_URL"].startswith("https://"),
    )
    if app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"],
                                x_proto=app.config["TRUSTED_PROXIES"])
    csrf.init_app(app)
    for blueprint in exempt_from_csrf:  # API keys and Twilio signatures protect these
        csrf.exempt(blueprint)
    # The client's page has no cookie session: its forms carry a token bound to the signed link.
    csrf.exempt(client_page_bp)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=lambda: g.get("locale", "en"))
    # Numbers people can tap: {{ number|phone(region) }} inside <a href="{{ number|tel }}">.
    app.add_template_filter(phones.display, "phone")
    app.add_template_filter(phones.tel_href, "tel")
    security.init_app(app)
    static_files.init_app(app)
    for blueprint in (auth_bp, staff_bp, client_page_bp):
        app.register_blueprint(blueprint)
