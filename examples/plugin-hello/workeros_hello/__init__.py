"""A complete workeros plugin: a setting, a route and a CLI command."""

from aiohttp import web

from workeros.api import SETTINGS, ok
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Command, ConfigKey


@hookimpl
def workeros_register_config_keys():
    return [ConfigKey("hello.greeting", "str", "Hello", "How /api/hello greets")]


async def hello(request: web.Request) -> web.Response:
    greeting = request.config_dict[SETTINGS]["hello.greeting"]
    return ok({"message": f"{greeting}, {request.query.get('name', 'world')}!"})


@hookimpl
def workeros_after_app_created(app):
    app.router.add_get("/api/hello", hello)


def greet(args, ctx):
    print(f"{ctx.settings['hello.greeting']}, {args.name}!")


@hookimpl
def workeros_register_commands():
    return [Command("hello", "Greet someone", run=greet,
                    configure=lambda parser: parser.add_argument("name", nargs="?", default="world"))]
