from served import served  # noqa: F401  (the module-scoped server fixture)
