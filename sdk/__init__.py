"""Tools for workeros users and plugin authors: an async client, type generation,
and a pytest plugin (:mod:`workeros.sdk.testing`)."""
