"""``workeros new-plugin NAME``: a plugin distribution ready to test, check and list.

The scaffold is what ``workeros plugins check`` asks of a plugin: an entry point in
the ``workeros`` group, the ``Framework :: workeros`` classifier, the
``workeros-plugin`` keyword and a ``workeros`` requirement bounded on both sides;
plus one hook implementation (a setting and a route) and tests on the
``workeros.sdk.testing`` fixtures, so ``pip install -e .[test] && pytest`` passes
from the first minute."""

from __future__ import annotations

import re
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")


def version_bound(version: str) -> str:
    """``workeros>=X.Y,<X.(Y+1)`` before 1.0 (a minor release may change hooks),
    ``>=X.Y,<(X+1)`` after."""
    major, minor = (int(part) for part in version.split(".")[:2])
    upper = f"{major + 1}" if major >= 1 else f"{major}.{minor + 1}"
    return f"workeros>={major}.{minor},<{upper}"


def files(name: str, version: str) -> dict[str, str]:
    """The scaffold's files by relative path."""
    if not NAME.match(name):
        raise ValueError(f"invalid plugin name {name!r}: lower-case letters, digits, '-' or '_', "
                         "starting with a letter")
    plugin = name.replace("-", "_")
    package = f"workeros_{plugin}"
    dist = f"workeros-plugin-{plugin.replace('_', '-')}"
    route = plugin.replace("_", "-")
    return {
        "pyproject.toml": PYPROJECT,
        "setup.cfg": SETUP_CFG.format(dist=dist, package=package, plugin=plugin, bound=version_bound(version)),
        "README.md": README.format(dist=dist, plugin=plugin, route=route, upper=plugin.upper()),
        f"{package}/__init__.py": MODULE.format(plugin=plugin, route=route),
        "tests/test_plugin.py": TESTS.format(plugin=plugin, route=route, package=package),
    }


def write(name: str, parent: Path, version: str) -> Path:
    """Write the scaffold into ``parent/workeros-plugin-NAME``; refuses to
    overwrite an existing folder."""
    created = files(name, version)
    target = parent / ("workeros-plugin-" + name.replace("_", "-"))
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    for relative, text in created.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
addopts = "-p no:cacheprovider"
'''

SETUP_CFG = '''\
[metadata]
name = {dist}
version = 0.1.0
description = A workeros plugin: {plugin}
long_description = file: README.md
long_description_content_type = text/markdown
license = MIT
keywords = workeros-plugin
classifiers =
    Framework :: workeros
    License :: OSI Approved :: MIT License
    Programming Language :: Python :: 3

[options]
packages = {package}
python_requires = >=3.11
install_requires =
    {bound}

[options.extras_require]
test =
    pytest>=8
    pytest-asyncio>=0.23

[options.entry_points]
workeros =
    {plugin} = {package}
'''

README = '''\
# {dist}

A [workeros](https://github.com/workeros/workeros) plugin. It declares the
setting `{plugin}.greeting` and serves `GET /api/{route}/hello`.

```sh
pip install -e '.[test]'
workeros plugins                  # lists "{plugin}" with its hooks
workeros plugins check {dist}     # what a listing asks of a plugin
pytest                            # on SQLite, and on PostgreSQL when one answers
```

Settings: `{plugin}.greeting` (`WORKEROS_{upper}_GREETING`, default `Hello`).

Tests use the `workeros.sdk.testing` fixtures (`wos_client`, `wos_services`,
...): each runs on SQLite and on PostgreSQL (`WOS_TEST_PG_URL`, skipped with the
reason shown when no server answers).
'''

MODULE = '''\
"""The {plugin} plugin for workeros."""

from workeros.api import SETTINGS, InvalidQuery, ok
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey


@hookimpl
def workeros_register_config_keys():
    return [ConfigKey("{plugin}.greeting", "str", "Hello", "How GET /api/{route}/hello greets")]


async def hello(request):
    """Greet the caller (``?name=``)."""
    name = request.query.get("name", "world")
    if len(name) > 100:
        raise InvalidQuery("name is longer than 100 characters")
    return ok({{"message": f"{{request.config_dict[SETTINGS]['{plugin}.greeting']}}, {{name}}!"}})


@hookimpl
def workeros_after_app_created(app):
    app.router.add_get("/api/{route}/hello", hello)
'''

TESTS = '''\
"""The plugin in a booted app, on SQLite and PostgreSQL (``wos_dialect``)."""

import pytest

import {package}


@pytest.fixture
def wos_load_plugins():
    # Only the dialects and this plugin (the kernel's essentials always load).
    return ["sqlite", "postgres", "{plugin}"]


async def test_the_route_greets(wos_client):
    response = await wos_client.get("/api/{route}/hello", params={{"name": "Ada"}})
    assert response.status == 200
    assert await response.json() == {{"data": {{"message": "Hello, Ada!"}}}}


@pytest.mark.parametrize("wos_settings_overrides", [{{"{plugin}.greeting": "Hi"}}])
async def test_the_greeting_is_a_setting(wos_client):
    response = await wos_client.get("/api/{route}/hello")
    assert (await response.json())["data"]["message"] == "Hi, world!"


async def test_bad_input_is_a_400_in_the_envelope(wos_client):
    response = await wos_client.get("/api/{route}/hello", params={{"name": "x" * 101}})
    assert response.status == 400
    assert (await response.json())["errors"][0]["extensions"]["code"] == "INVALID_QUERY"


def test_the_plugin_is_loaded(wos_app):
    from workeros.api import PLUGINS

    info = wos_app[PLUGINS].infos["{plugin}"]
    assert info.error is None
    assert "workeros_after_app_created" in info.hooks
    assert {package}.__name__ == info.module
'''

