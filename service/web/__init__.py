"""The web: the staff app, the client page, the JSON API and the provider webhooks."""
