"""Built-in adapters. Each module is a plugin, declared as an entry point in msgbridge's
own ``pyproject.toml``, so it is discovered exactly like a third-party adapter."""
