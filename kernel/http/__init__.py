"""The HTTP layer: the app factory, middlewares, the server, web helpers."""
