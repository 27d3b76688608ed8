// The Jinja2-compatible template engine.
