"""The pure core: deciding routing, switching and promotion from plain values.

Nothing under ``provider/core/`` imports asyncio, aiohttp or aiodocker (a test
guards that); the watcher, the controller and the API feed it and serve what
it answers. docs/architecture.md maps the modules.
"""
