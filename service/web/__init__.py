"""The web: the staff app, the client page, the JSON API and the provider webhooks."""

from flask import has_request_context, request

from service.care import audit


def _request_address() -> str | None:
    return request.remote_addr if has_request_context() else None


audit.remote_addr_of = _request_address  # every audit row written in a request says from where
