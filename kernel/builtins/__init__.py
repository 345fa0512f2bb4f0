"""Built-in plugins: kernel features that are plugins like any other, with no
special path (datasette's ``default_plugins``). They cannot be disabled."""
